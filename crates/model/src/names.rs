//! The one rule per kind for names. A name becomes a folder in the fleet repository, a
//! Kubernetes object name, a namespace or a label value; whatever validates here renders and
//! is accepted by Kubernetes, so nothing fails half way through a render.

use serde::{Deserialize, Deserializer};

/// What a kind's `metadata.name` must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// An RFC 1123 subdomain (at most 253 of a-z, 0-9, `-`, `.`): the Kubernetes object name.
    Subdomain,
    /// An RFC 1123 label of at most `max` characters (a-z, 0-9, `-`).
    Label {
        /// The length limit.
        max: usize,
        /// Why that limit (what Cluster API or Kubernetes derives from the name).
        why: &'static str,
    },
}

/// Longest Cluster name: Cluster API copies `<cluster>-control-plane` (the longest name atoll
/// derives from a cluster) into label values, which Kubernetes limits to 63 characters.
pub const CLUSTER_NAME_MAX: usize = 63 - "-control-plane".len();

/// The rule for a kind's names.
pub fn rule(kind: &str) -> NameRule {
    match kind {
        "Cluster" => NameRule::Label {
            max: CLUSTER_NAME_MAX,
            why: "a cluster's name is a folder, a label value (`atoll.dev/cluster`) and the prefix of its Cluster API object names (`<name>-control-plane` must stay a valid label value)",
        },
        "Team" => NameRule::Label {
            max: 63,
            why: "a team's name is a namespace and a label value (`atoll.dev/team`)",
        },
        "Application" => NameRule::Label {
            max: 63,
            why: "an application's name is a folder and the prefix of its workloads' names",
        },
        _ => NameRule::Subdomain,
    }
}

/// Why `name` is not a valid name for `kind`, if it is not.
pub fn name_problem(kind: &str, name: &str) -> Option<String> {
    match rule(kind) {
        NameRule::Subdomain => dns_subdomain_problem(name),
        NameRule::Label { max, why } => {
            if let Some(m) = dns_label_problem(name) {
                Some(format!("{m} ({why})"))
            } else if name.len() > max {
                Some(format!(
                    "`{name}` is {} characters long; a {kind} name is at most {max}: {why}",
                    name.len()
                ))
            } else {
                None
            }
        }
    }
}

/// RFC 1123 subdomain, as Kubernetes checks it (`validation.IsDNS1123Subdomain`): at most 253
/// characters, dot-separated parts of a-z, 0-9 and `-` that start and end with a letter or
/// digit.
pub fn dns_subdomain_problem(s: &str) -> Option<String> {
    let part_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    let ok = !s.is_empty() && s.len() <= 253 && s.split('.').all(part_ok);
    (!ok).then(|| format!("`{}` is not a valid name: expected at most 253 lower-case letters, digits, `-` and `.`, starting and ending with a letter or digit", shorten(s)))
}

/// RFC 1123 label (namespaces, Service names): at most 63 of a-z, 0-9, `-`, starting and
/// ending with a letter or digit.
pub fn dns_label_problem(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let ok = !s.is_empty()
        && s.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-';
    (!ok).then(|| {
        format!(
            "`{}` is not a valid DNS label: expected at most 63 lower-case letters, digits and `-`, starting and ending with a letter or digit",
            shorten(s)
        )
    })
}

/// A long name cut for an error message.
fn shorten(s: &str) -> String {
    if s.chars().count() <= 80 {
        s.to_string()
    } else {
        let head: String = s.chars().take(60).collect();
        format!("{head}… ({} characters)", s.chars().count())
    }
}

/// `null` read as an empty list, as Kubernetes reads `values: null`.
pub fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_fit_label_values() {
        let longest = "a".repeat(CLUSTER_NAME_MAX);
        assert!(name_problem("Cluster", &longest).is_none());
        assert!(format!("{longest}-control-plane").len() <= 63);
        let m = name_problem("Cluster", &"a".repeat(CLUSTER_NAME_MAX + 1)).unwrap();
        assert!(m.contains("at most 49"), "{m}");
        assert!(name_problem("Cluster", "edge.paris").is_some());
        assert!(name_problem("ClusterCatalog", "edge.paris").is_none());
        assert!(name_problem("Team", &"t".repeat(64)).is_some());
        assert!(name_problem("IPPool", &"p".repeat(254)).is_some());
        // Kubernetes' subdomain rule has no per-part limit.
        assert!(dns_subdomain_problem(&"p".repeat(64)).is_none());
    }
}
