//! Declarations already read from a file, stored by the digest of the file's name and text so
//! that a shell can keep them between runs and skip parsing unchanged files (YAML parsing is
//! most of loading a 10,000-cluster fleet). A stored file gives back the same declarations,
//! with the same origins, as parsing it again; only files that loaded without errors are
//! stored.

use crate::decl::{Decl, Declarations, Origin, Source};
use crate::types::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A store of files' declarations, by [`digest`].
pub trait ParsedFiles: Sync {
    /// What [`store`] made of a file with this digest, if kept.
    fn get(&self, digest: &str) -> Option<Vec<u8>>;
}

/// The key of a file: its name (origins name it) and its text.
pub fn digest(file: &str, text: &str) -> String {
    let mut h = sha1_smol::Sha1::new();
    h.update(&(file.len() as u64).to_le_bytes());
    h.update(file.as_bytes());
    h.update(text.as_bytes());
    h.digest().to_string()
}

#[derive(Serialize)]
struct Out<'a, T> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: &'a Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
    spec: &'a T,
    line: usize,
    doc: usize,
    #[serde(skip_serializing_if = "str::is_empty")]
    prefix: &'a str,
    object: &'a str,
}

impl<'a, T> Out<'a, T> {
    fn of(d: &'a Decl<T>) -> Self {
        Out {
            name: &d.name,
            namespace: &d.namespace,
            labels: &d.labels,
            spec: &d.spec,
            line: d.origin.line,
            doc: d.origin.doc,
            prefix: &d.origin.prefix,
            object: &d.origin.object,
        }
    }
}

#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct In<T> {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    spec: T,
    line: usize,
    doc: usize,
    #[serde(default)]
    prefix: String,
    object: String,
}

impl<T> In<T> {
    fn into_decl(self, file: &Arc<str>, source: &Arc<Source>) -> Decl<T> {
        Decl {
            name: self.name,
            namespace: self.namespace,
            labels: self.labels,
            spec: self.spec,
            origin: Origin {
                file: file.clone(),
                line: self.line,
                source: source.clone(),
                doc: self.doc,
                prefix: self.prefix,
                object: self.object.into(),
            },
        }
    }
}

macro_rules! stored_kinds {
    ($($kind:ident, $field:ident: $ty:ty, $scope:ident;)*) => {
        #[derive(Serialize)]
        struct FileOut<'a> {
            $(
                #[serde(skip_serializing_if = "Vec::is_empty")]
                $field: Vec<Out<'a, $ty>>,
            )*
        }

        #[derive(Deserialize)]
        struct FileIn {
            $(
                #[serde(default)]
                $field: Vec<In<$ty>>,
            )*
        }

        /// A file's declarations, for the store.
        pub fn store(d: &Declarations) -> Vec<u8> {
            let out = FileOut {
                $( $field: d.$field.iter().map(Out::of).collect(), )*
            };
            serde_json::to_vec(&out).expect("declarations serialise")
        }

        /// The declarations [`store`] kept, as read from `file` whose text is `source`.
        /// `None` when the bytes are not what this build stores (another version wrote them).
        pub fn restore(bytes: &[u8], file: &Arc<str>, source: &Arc<Source>) -> Option<Declarations> {
            let f: FileIn = serde_json::from_slice(bytes).ok()?;
            Some(Declarations {
                $( $field: f.$field.into_iter().map(|x| x.into_decl(file, source)).collect(), )*
            })
        }
    };
}

crate::kinds::for_each_kind!(stored_kinds);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{load_paths_with, yaml_files};
    use std::path::PathBuf;
    use std::sync::Mutex;

    /// A store in memory that counts what it was asked.
    #[derive(Default)]
    struct Memory {
        files: Mutex<BTreeMap<String, Vec<u8>>>,
        hits: Mutex<usize>,
    }

    impl ParsedFiles for Memory {
        fn get(&self, digest: &str) -> Option<Vec<u8>> {
            let found = self.files.lock().unwrap().get(digest).cloned();
            if found.is_some() {
                *self.hits.lock().unwrap() += 1;
            }
            found
        }
    }

    fn examples() -> Vec<PathBuf> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let files = yaml_files(&[root]).unwrap();
        assert!(files.len() > 15, "examples: {files:?}");
        files
    }

    /// Every example file, seed conversions included, comes back from the store exactly as
    /// parsing gives it: names, labels, specs, origins (file, line, document, prefix, object).
    #[test]
    fn stored_files_restore_the_declarations_parsing_gives() {
        for f in examples() {
            let paths = [f.clone()];
            let parsed = load_paths_with(&paths, None);
            if !parsed.diags.is_empty() {
                continue; // deliberately broken examples are not stored
            }
            let store = Memory::default();
            let first = load_paths_with(&paths, Some(&store));
            assert_eq!(first.parsed.len(), 1, "{}", f.display());
            store
                .files
                .lock()
                .unwrap()
                .extend(first.parsed.iter().cloned());
            let again = load_paths_with(&paths, Some(&store));
            assert!(again.parsed.is_empty(), "{}: parsed again", f.display());
            assert_eq!(*store.hits.lock().unwrap(), 1);
            assert_eq!(
                format!("{:?}", again.decls),
                format!("{:?}", parsed.decls),
                "{}",
                f.display()
            );
        }
    }

    /// A changed file has another digest, so its stored declarations are not used; bytes this
    /// build cannot read are parsed again rather than trusted.
    #[test]
    fn a_changed_or_unreadable_entry_is_parsed_again() {
        let dir = std::env::temp_dir().join(format!("atoll-parsed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("team.yaml");
        let doc = |group: &str| {
            format!(
                "apiVersion: atoll.dev/v1alpha1\nkind: Team\nmetadata:\n  name: shop\nspec:\n  readers: [{group}]\n"
            )
        };
        std::fs::write(&f, doc("a")).unwrap();
        let paths = [f.clone()];
        let store = Memory::default();
        let first = load_paths_with(&paths, Some(&store));
        store.files.lock().unwrap().extend(first.parsed);
        std::fs::write(&f, doc("b")).unwrap();
        let second = load_paths_with(&paths, Some(&store));
        assert_eq!(second.parsed.len(), 1);
        assert_eq!(second.decls.teams[0].spec.readers, vec!["b".to_string()]);
        for v in store.files.lock().unwrap().values_mut() {
            *v = b"{not json".to_vec();
        }
        std::fs::write(&f, doc("a")).unwrap();
        let third = load_paths_with(&paths, Some(&store));
        assert_eq!(third.parsed.len(), 1, "garbage must not be trusted");
        assert_eq!(third.decls.teams[0].spec.readers, vec!["a".to_string()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
