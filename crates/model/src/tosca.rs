//! TOSCA blueprints in, Applications out (seed 003 §7.3: the AMF posts a blueprint like its
//! Figure 7.3 and gets a custom resource like Figure 7.4).
//!
//! - Node templates whose type names a component (`Charity.Component`,
//!   `tosca.nodes.Container.Application`, …) become components: `properties.name`, `image`,
//!   `environment` (values, or `{get_input: NAME}` resolved from the request's inputs or the
//!   blueprint's input defaults), `replicas`, `port`. `deployment_unit: EXTERNAL` marks a node
//!   outside the application (a Kafka, an S3): it is not deployed.
//! - Node templates whose type names a virtual link (`Charity.VirtualLink`,
//!   `tosca.nodes.network.Network`, `tosca.nodes.nfv.VnfVirtualLink`) are the networks; a
//!   node joins one with a `virtual_link:` (or `link:`) requirement.
//! - Exposure, as the seed decided it: a component sharing a link with an external node is
//!   public (an Ingress); components sharing a link with each other get Services.
//! - Placement is left to the team's target policies unless a component pins a `cluster`.
//!
//! Host nodes (`Charity.Node`, `tosca.nodes.Compute`) and their node filters are ignored:
//! atoll's clusters, not the blueprint, decide machine sizes.

use crate::decl::Diagnostic;
use crate::yaml;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

fn diag(file: &str, line: usize, path: &str, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        file: file.into(),
        line,
        col: 1,
        object: "TOSCA blueprint".into(),
        path: path.into(),
        message: message.into(),
    }
}

/// A DNS label from free text: `Cyango Cloud Studio - reimported` → `cyango-cloud-studio-reimported`.
pub fn dns_label(s: &str) -> String {
    let mut out = String::new();
    for c in s.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut out: String = out.trim_end_matches('-').chars().take(63).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

fn is_component(t: &str) -> bool {
    let t = t.to_lowercase();
    t.ends_with(".component") || t.contains("container.application") || t.ends_with(".application")
}

fn is_link(t: &str) -> bool {
    let t = t.to_lowercase();
    t.contains("virtuallink") || t.ends_with("network.network") || t.ends_with(".network")
}

/// Reads a property that blueprints spell with `_` or a space (`deployment_unit`,
/// `deployment unit` — Figure 7.3 has both).
fn prop<'a>(props: &'a Value, key: &str) -> Option<&'a Value> {
    props
        .get(key)
        .or_else(|| props.get(key.replace('_', " ").as_str()))
}

/// Converts a blueprint into an Application of `team`. `name` overrides the template name;
/// `inputs` override the blueprint's input defaults.
pub fn application(
    file: &str,
    text: &str,
    team: &str,
    name: Option<&str>,
    inputs: &BTreeMap<String, String>,
) -> Result<Value, Vec<Diagnostic>> {
    let docs = yaml::parse_documents(text).map_err(|e| {
        vec![Diagnostic {
            file: file.into(),
            line: e.line,
            col: e.col,
            object: "TOSCA blueprint".into(),
            path: String::new(),
            message: format!("invalid YAML: {}", e.message),
        }]
    })?;
    let Some(doc) = docs.into_iter().next() else {
        return Err(vec![diag(file, 1, "", "empty blueprint")]);
    };
    let line = |path: &str| doc.positions.find(path).map(|p| p.0).unwrap_or(1);
    let v = &doc.value;
    let mut errors = Vec::new();
    let Some(nodes) = v["topology_template"]["node_templates"].as_object() else {
        return Err(vec![diag(
            file,
            line("topology_template"),
            "topology_template.node_templates",
            "expected a mapping of node templates",
        )]);
    };
    let meta = &v["metadata"];
    let app_name = match name {
        Some(n) => n.to_string(),
        None => dns_label(
            prop(meta, "template_name")
                .and_then(Value::as_str)
                .unwrap_or(""),
        ),
    };
    if let Some(p) = crate::names::dns_label_problem(&app_name) {
        errors.push(diag(
            file,
            line("metadata"),
            "metadata.template_name",
            format!("the application name `{app_name}` {p}; pass ?name= to choose one"),
        ));
    }
    let owner = prop(meta, "template_author")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());

    // Input defaults, overridden by the request.
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    if let Some(ins) = v["topology_template"]["inputs"].as_object() {
        for (k, d) in ins {
            if let Some(def) = d.get("default") {
                values.insert(
                    k.clone(),
                    def.as_str().map(str::to_string).unwrap_or(def.to_string()),
                );
            }
        }
    }
    values.extend(inputs.clone());

    // Which links each node joins; which nodes are external.
    let mut links_of: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut external: BTreeSet<&str> = BTreeSet::new();
    let mut links: BTreeSet<&str> = BTreeSet::new();
    for (id, n) in nodes {
        let t = n["type"].as_str().unwrap_or("");
        if is_link(t) {
            links.insert(id);
            continue;
        }
        let props = &n["properties"];
        if prop(props, "deployment_unit").and_then(Value::as_str) == Some("EXTERNAL") {
            external.insert(id);
        }
        for r in n["requirements"].as_array().into_iter().flatten() {
            for key in ["virtual_link", "link"] {
                if let Some(l) = r.get(key) {
                    let l = l.as_str().or_else(|| l["node"].as_str()).unwrap_or("");
                    links_of.entry(id).or_default().insert(l.to_string());
                }
            }
        }
    }
    for (id, ls) in &links_of {
        for l in ls {
            if !links.contains(l.as_str()) {
                errors.push(diag(
                    file,
                    line(&format!(
                        "topology_template.node_templates.{id}.requirements"
                    )),
                    &format!("topology_template.node_templates.{id}.requirements"),
                    format!("virtual link `{l}` is not a node template of a virtual-link type"),
                ));
            }
        }
    }
    let public_links: BTreeSet<&String> = external
        .iter()
        .flat_map(|e| links_of.get(e).into_iter().flatten())
        .collect();

    let mut components = Vec::new();
    let mut pinned = BTreeSet::new();
    for (id, n) in nodes {
        let t = n["type"].as_str().unwrap_or("");
        if !is_component(t) || external.contains(id.as_str()) {
            continue;
        }
        let at = format!("topology_template.node_templates.{id}");
        let props = &n["properties"];
        let cname = dns_label(prop(props, "name").and_then(Value::as_str).unwrap_or(id));
        let Some(image) = prop(props, "image").and_then(Value::as_str) else {
            errors.push(diag(
                file,
                line(&at),
                &format!("{at}.properties.image"),
                "a deployed component needs an image",
            ));
            continue;
        };
        let mut c = json!({"name": cname, "image": image});
        let mut env = Vec::new();
        if let Some(e) = prop(props, "environment").and_then(Value::as_object) {
            for (k, val) in e {
                let path = format!("{at}.properties.environment.{k}");
                let value = match val {
                    Value::Object(o) => {
                        let input = o
                            .get("get_input")
                            .or_else(|| o.get("get input"))
                            .and_then(Value::as_str);
                        match input.and_then(|i| values.get(i).map(|v| (i, v))) {
                            Some((_, v)) => v.clone(),
                            None => {
                                errors.push(diag(
                                    file,
                                    line(&path),
                                    &path,
                                    format!(
                                        "input `{}` has no value: give it in the request's inputs or a default in topology_template.inputs",
                                        input.unwrap_or("?")
                                    ),
                                ));
                                continue;
                            }
                        }
                    }
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                // Environment names cannot hold spaces (Figure 7.3 writes `NODE ENV`).
                env.push(json!({"name": k.replace(' ', "_"), "value": value}));
            }
        }
        if !env.is_empty() {
            c["env"] = json!(env);
        }
        if let Some(r) = prop(props, "replicas").and_then(Value::as_i64) {
            c["replicas"] = json!(r);
        }
        if let Some(cl) = prop(props, "cluster").and_then(Value::as_str) {
            c["cluster"] = json!(cl);
            pinned.insert(cl.to_string());
        }
        let port = prop(props, "port").and_then(Value::as_i64).unwrap_or(80);
        let mine = links_of.get(id.as_str()).cloned().unwrap_or_default();
        let public = mine.iter().any(|l| public_links.contains(l));
        let shared = mine.iter().any(|l| {
            links_of.iter().any(|(other, ls)| {
                *other != id.as_str() && !external.contains(other) && ls.contains(l)
            })
        });
        if public || shared {
            c["expose"] = json!([{"containerPort": port, "public": public}]);
        }
        components.push(c);
    }
    if components.is_empty() && errors.is_empty() {
        errors.push(diag(
            file,
            line("topology_template"),
            "topology_template.node_templates",
            "no deployable component (a node of a component type without deployment_unit: EXTERNAL)",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut spec = json!({"components": components});
    if let Some(o) = owner {
        spec["owner"] = json!(o);
    }
    if let Some(d) = v["description"].as_str() {
        spec["description"] = json!(d);
    }
    if !pinned.is_empty() {
        spec["clusters"] = json!(pinned);
    }
    Ok(json!({
        "apiVersion": crate::API_VERSION,
        "kind": "Application",
        "metadata": {"name": app_name, "namespace": team, "labels": {"atoll.dev/source": "tosca"}},
        "spec": spec,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLUEPRINT: &str = r#"
description: Cloud Studio Service
metadata:
  template_name: Cyango Cloud Studio - reimported
  template_author: cyango-xr-developer
topology_template:
  inputs:
    NODE_ENV: {type: string, default: beta}
  node_templates:
    public-net: {type: Charity.VirtualLink}
    backend-net: {type: Charity.VirtualLink}
    charity-kafka:
      type: Charity.Component
      properties: {name: charity-kafka, deployment_unit: EXTERNAL}
      requirements: [{virtual_link: public-net}]
    cyango-backend:
      type: Charity.Component
      properties:
        name: cyango-backend
        deployment_unit: K8S_POD
        image: repository.charity-project.eu/dotes/cyango-backend:beta
        port: 8080
        environment:
          NODE ENV: {get_input: NODE_ENV}
      requirements:
        - virtual_link: public-net
        - virtual_link: backend-net
        - host: cyango-backendNode
    cyango-database:
      type: Charity.Component
      properties:
        name: cyango-database
        deployment_unit: K8S_POD
        image: repository.charity-project.eu/dotes/cyango-database:beta
        port: 27017
        cluster: core-eu-west
      requirements: [{virtual_link: backend-net}]
    cyango-worker:
      type: Charity.Component
      properties: {name: cyango-worker, image: repository.charity-project.eu/dotes/cyango-worker:beta}
    cyango-backendNode:
      type: Charity.Node
"#;

    #[test]
    fn figure_7_3_becomes_an_application_like_figure_7_4() {
        let app = application("bp.yaml", BLUEPRINT, "studio", None, &BTreeMap::new()).unwrap();
        assert_eq!(app["metadata"]["name"], "cyango-cloud-studio-reimported");
        assert_eq!(app["metadata"]["namespace"], "studio");
        assert_eq!(app["spec"]["owner"], "cyango-xr-developer");
        let comps = app["spec"]["components"].as_array().unwrap();
        let names: Vec<&str> = comps.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            ["cyango-backend", "cyango-database", "cyango-worker"]
        );
        // Linked to the external Kafka: public. Sharing a link: a Service. Alone: nothing.
        assert_eq!(
            comps[0]["expose"],
            json!([{"containerPort": 8080, "public": true}])
        );
        assert_eq!(
            comps[1]["expose"],
            json!([{"containerPort": 27017, "public": false}])
        );
        assert!(comps[2].get("expose").is_none());
        assert_eq!(
            comps[0]["env"],
            json!([{"name": "NODE_ENV", "value": "beta"}])
        );
        // Pinned by the blueprint; otherwise placement is the policies' business.
        assert_eq!(comps[1]["cluster"], "core-eu-west");
        assert_eq!(app["spec"]["clusters"], json!(["core-eu-west"]));
        // It is a valid Application.
        let mut decls = crate::Declarations::default();
        let mut diags = Vec::new();
        crate::load_str("x", &app.to_string(), &mut decls, &mut diags);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(decls.applications.len(), 1);
    }

    #[test]
    fn inputs_from_the_request_win_and_missing_ones_are_named() {
        let mut inputs = BTreeMap::new();
        inputs.insert("NODE_ENV".to_string(), "prod".to_string());
        let app = application("bp.yaml", BLUEPRINT, "studio", Some("studio"), &inputs).unwrap();
        assert_eq!(app["metadata"]["name"], "studio");
        assert_eq!(app["spec"]["components"][0]["env"][0]["value"], "prod");
        let no_default = BLUEPRINT.replace(
            "NODE_ENV: {type: string, default: beta}",
            "NODE_ENV: {type: string}",
        );
        let e = application("bp.yaml", &no_default, "studio", None, &BTreeMap::new()).unwrap_err();
        assert!(e[0].path.ends_with("environment.NODE ENV"), "{e:?}");
        assert!(e[0].message.contains("NODE_ENV"), "{e:?}");
        assert!(e[0].line > 1);
        let bad_link =
            BLUEPRINT.replace("[{virtual_link: backend-net}]", "[{virtual_link: nowhere}]");
        let e = application("bp.yaml", &bad_link, "studio", None, &BTreeMap::new()).unwrap_err();
        assert!(e[0].message.contains("nowhere"), "{e:?}");
    }
}
