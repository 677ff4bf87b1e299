//! Bad input: each case gets its own message naming file, line and field, a non-zero exit,
//! and leaves the repository exactly as it was (HEAD and work tree).

mod common;
use common::*;
use std::path::Path;

use common::BASE_FLEET as BASE;

const H: &str = "apiVersion: atoll.dev/v1alpha1\n";

struct Case {
    name: &'static str,
    /// Contents of `case.yaml`, added beside the base fleet.
    file: String,
    /// (from, to) replacements in the base fleet.
    edit: Option<(&'static str, &'static str)>,
    /// Expected in the error output.
    message: &'static str,
    /// `file:line:` expected in the error output.
    place: &'static str,
}

fn case(name: &'static str, file: &str, message: &'static str, place: &'static str) -> Case {
    Case {
        name,
        file: file.to_string(),
        edit: None,
        message,
        place,
    }
}

fn edit(
    name: &'static str,
    from: &'static str,
    to: &'static str,
    message: &'static str,
    place: &'static str,
) -> Case {
    Case {
        name,
        file: String::new(),
        edit: Some((from, to)),
        message,
        place,
    }
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "yaml syntax",
            "kind: Cluster\nmetadata: {name: [unclosed\n",
            "invalid YAML",
            "case.yaml:3:",
        ),
        case(
            "duplicate key",
            &format!("{H}kind: Team\nmetadata: {{name: t2}}\nmetadata: {{name: t3}}\n"),
            "duplicate key `metadata`",
            "case.yaml:4:",
        ),
        case(
            "unknown field",
            &format!("{H}kind: Team\nmetadata: {{name: t2}}\nspec:\n  readerz: [x]\n"),
            "unknown field `readerz`, expected one of `description`, `readers`, `contributors`",
            "case.yaml:5:",
        ),
        case(
            "wrong type",
            &format!(
                "{H}kind: Cluster\nmetadata: {{name: c2}}\nspec:\n  catalog: small\n  overrides:\n    infrastructure:\n      workerCount: three\n"
            ),
            "spec.overrides.infrastructure.workerCount: invalid type: string \"three\", expected i32",
            "case.yaml:8:",
        ),
        case(
            "missing apiVersion",
            "kind: Team\nmetadata: {name: t2}\n",
            "missing `apiVersion`",
            "case.yaml:1:",
        ),
        case(
            "unknown kind",
            &format!("{H}kind: Clustr\nmetadata: {{name: c2}}\n"),
            "unknown kind `Clustr`",
            "case.yaml:2:",
        ),
        case(
            "unknown apiVersion",
            "apiVersion: atoll.io/v1\nkind: Team\nmetadata: {name: t2}\n",
            "unsupported apiVersion `atoll.io/v1` for Team",
            "case.yaml:1:",
        ),
        case(
            "missing name",
            &format!("{H}kind: Team\nmetadata: {{labels: {{a: b}}}}\n"),
            "missing `metadata.name`",
            "case.yaml:3:",
        ),
        case(
            "invalid name",
            &format!("{H}kind: Team\nmetadata: {{name: Web_Team}}\n"),
            "`Web_Team` is not a valid DNS label",
            "case.yaml:3:",
        ),
        case(
            "missing catalog",
            &format!("{H}kind: Cluster\nmetadata: {{name: c2}}\nspec:\n  catalog: nope\n"),
            "catalog `nope` does not exist (catalogs: small)",
            "case.yaml:5:",
        ),
        case(
            "missing profile revision",
            &format!(
                "{H}kind: Cluster\nmetadata: {{name: c2}}\nspec:\n  profiles:\n    infrastructure: {{name: infra, revision: \"9\"}}\n"
            ),
            "profile `infra@9` does not exist (revisions of `infra`: 1)",
            "case.yaml:6:",
        ),
        case(
            "profile of the wrong type",
            &format!(
                "{H}kind: ClusterCatalog\nmetadata: {{name: c2}}\nspec:\n  infrastructure: {{name: infra, revision: \"1\"}}\n  network: {{name: infra, revision: \"1\"}}\n"
            ),
            "profile `infra@1` is of type Infrastructure, expected a Network profile",
            "case.yaml:6:",
        ),
        case(
            "profile base cycle",
            &format!(
                "{H}kind: InfrastructureProfile\nmetadata: {{name: a}}\nspec:\n  type: Network\n  revision: \"1\"\n  base: {{name: b, revision: \"1\"}}\n---\n{H}kind: InfrastructureProfile\nmetadata: {{name: b}}\nspec:\n  type: Network\n  revision: \"1\"\n  base: {{name: a, revision: \"1\"}}\n"
            ),
            "profile bases form a cycle: a@1 -> b@1 -> a@1",
            "case.yaml:7:",
        ),
        case(
            "values of another type",
            &format!(
                "{H}kind: InfrastructureProfile\nmetadata: {{name: n2}}\nspec:\n  type: Network\n  revision: \"1\"\n  infrastructure: {{workerCount: 2}}\n"
            ),
            "a profile of type Network cannot have `infrastructure` values",
            "case.yaml:7:",
        ),
        case(
            "unknown team",
            &format!(
                "{H}kind: Application\nmetadata: {{name: a2, namespace: ghost}}\nspec:\n  git: {{repoURL: https://x/y.git}}\n"
            ),
            "team `ghost` does not exist (teams: shop)",
            "case.yaml:3:",
        ),
        case(
            "application without source",
            &format!(
                "{H}kind: Application\nmetadata: {{name: a2, namespace: shop}}\nspec:\n  description: nothing\n"
            ),
            "no source: expected exactly one of `git`, `kpt`, `helm` or `components`",
            "case.yaml:4:",
        ),
        case(
            "application with two sources",
            &format!(
                "{H}kind: Application\nmetadata: {{name: a2, namespace: shop}}\nspec:\n  git: {{repoURL: https://x/y.git}}\n  helm: {{repoURL: https://c, chart: c, version: \"1\"}}\n"
            ),
            "several sources (git, helm)",
            "case.yaml:6:",
        ),
        case(
            "application without namespace",
            &format!(
                "{H}kind: Application\nmetadata: {{name: a2}}\nspec:\n  git: {{repoURL: https://x/y.git}}\n"
            ),
            "Application is namespaced: set `metadata.namespace` to the owning team",
            "case.yaml:3:",
        ),
        case(
            "selector operator",
            &format!(
                "{H}kind: TargetPolicy\nmetadata: {{name: p2, namespace: shop}}\nspec:\n  appSelector: {{}}\n  clusterSelector:\n    matchExpressions:\n      - {{key: region, operator: Has}}\n"
            ),
            "`Has` is not a valid label selector operator: expected In, NotIn, Exists or DoesNotExist",
            "case.yaml:8:",
        ),
        case(
            "selector In without values",
            &format!(
                "{H}kind: TargetPolicy\nmetadata: {{name: p2, namespace: shop}}\nspec:\n  appSelector:\n    matchExpressions:\n      - {{key: app, operator: In}}\n  clusterSelector: {{}}\n"
            ),
            "operator In needs at least one value",
            "case.yaml:7:",
        ),
        case(
            "pool CIDR",
            &format!(
                "{H}kind: IPPool\nmetadata: {{name: p2}}\nspec:\n  purpose: service\n  cidrs: [\"10.300.0.0/16\"]\n"
            ),
            "`10.300.0.0/16` is not a CIDR",
            "case.yaml:6:",
        ),
        case(
            "pool host bits",
            &format!(
                "{H}kind: IPPool\nmetadata: {{name: p2}}\nspec:\n  purpose: service\n  cidrs: [\"10.200.0.1/16\"]\n"
            ),
            "has host bits set; did you mean `10.200.0.0/16`?",
            "case.yaml:6:",
        ),
        case(
            "pool of the wrong purpose",
            &format!(
                "{H}kind: InfrastructureProfile\nmetadata: {{name: n2}}\nspec:\n  type: Network\n  revision: \"1\"\n  network: {{cni: calico, podPool: lb}}\n"
            ),
            "IPPool `lb` has purpose LoadBalancer, expected Pod",
            "case.yaml:7:",
        ),
        case(
            "overlapping pools",
            &format!(
                "{H}kind: IPPool\nmetadata: {{name: p2}}\nspec:\n  purpose: service\n  cidrs: [\"10.65.0.0/16\"]\n"
            ),
            "`10.64.0.0/14` overlaps IPPool `p2`",
            "base.yaml:4:",
        ),
        case(
            "kubernetes version",
            &format!(
                "{H}kind: Cluster\nmetadata: {{name: c2}}\nspec:\n  catalog: small\n  overrides:\n    infrastructure: {{kubernetesVersion: \"1.34\"}}\n"
            ),
            "`1.34` is not a Kubernetes version, expected e.g. `v1.34.2`",
            "case.yaml:7:",
        ),
        case(
            "even control plane",
            &format!(
                "{H}kind: Cluster\nmetadata: {{name: c2}}\nspec:\n  catalog: small\n  overrides:\n    infrastructure:\n      controlPlaneCount: 2\n"
            ),
            "expected an odd number >= 1 (etcd quorum)",
            "case.yaml:8:",
        ),
        case(
            "duplicate cluster",
            &format!("{H}kind: Cluster\nmetadata: {{name: site-a}}\nspec: {{catalog: small}}\n"),
            "duplicate Cluster \"site-a\"",
            "case.yaml:3:",
        ),
        case(
            "k3s with calico",
            &format!(
                "{H}kind: Cluster\nmetadata: {{name: c2}}\nspec:\n  catalog: small\n  overrides:\n    infrastructure: {{bootstrap: k3s}}\n"
            ),
            "k3s clusters run k3s's built-in flannel, but the CNI is Calico (from profile net@1)",
            "case.yaml:",
        ),
        case(
            "component on an unknown cluster",
            &format!(
                "{H}kind: Application\nmetadata: {{name: a2, namespace: shop}}\nspec:\n  components:\n    - name: x\n      image: x:1\n      cluster: mars\n"
            ),
            "cluster `mars` does not exist",
            "case.yaml:8:",
        ),
        case(
            "port out of range",
            &format!(
                "{H}kind: Application\nmetadata: {{name: a2, namespace: shop}}\nspec:\n  components:\n    - name: x\n      image: x:1\n      expose: [{{containerPort: 70000}}]\n"
            ),
            "port 70000 is out of range 1-65535",
            "case.yaml:8:",
        ),
        case(
            "shared address port clash",
            &format!(
                "{H}kind: Application\nmetadata: {{name: ssh, namespace: shop, labels: {{app: web}}}}\nspec:\n  components:\n    - name: gw\n      image: x:1\n      expose: [{{containerPort: 8443, servicePort: 443, public: true, http: false}}]\n"
            ),
            "port 443/TCP on the shared address 203.0.113.0 is wanted by both add-on ingress-nginx (https) and application shop/ssh component gw",
            "base.yaml:56:",
        ),
        case(
            "pool exhausted",
            &format!(
                "{H}kind: Cluster\nmetadata: {{name: c2, labels: {{region: us}}}}\nspec: {{catalog: small}}\n---\n{H}kind: Cluster\nmetadata: {{name: c3}}\nspec: {{catalog: small}}\n---\n{H}kind: Cluster\nmetadata: {{name: c4}}\nspec: {{catalog: small}}\n---\n{H}kind: Cluster\nmetadata: {{name: c5}}\nspec: {{catalog: small}}\n"
            ),
            "IPPool `lb` is exhausted: no free /32 block left for cluster `",
            "base.yaml:9:",
        ),
        case(
            "invalid label",
            &format!(
                "{H}kind: Cluster\nmetadata: {{name: c2, labels: {{region: \"eu west\"}}}}\nspec: {{catalog: small}}\n"
            ),
            "`eu west` is not a valid label value",
            "case.yaml:3:",
        ),
        case(
            "namespace of two teams",
            &format!(
                "{H}kind: Team\nmetadata: {{name: other}}\n---\n{H}kind: Application\nmetadata: {{name: a2, namespace: other}}\nspec:\n  targetNamespace: shop\n  git: {{repoURL: https://x/y.git}}\n"
            ),
            "namespace `shop` is already used by team `shop`",
            "case.yaml:9:",
        ),
        case(
            "no provider",
            &format!(
                "{H}kind: InfrastructureProfile\nmetadata: {{name: bare}}\nspec:\n  type: Infrastructure\n  revision: \"1\"\n  infrastructure: {{kubernetesVersion: v1.34.2}}\n---\n{H}kind: Cluster\nmetadata: {{name: c2}}\nspec:\n  profiles:\n    infrastructure: {{name: bare, revision: \"1\"}}\n"
            ),
            "no provider: set it in the Infrastructure profile",
            "case.yaml:",
        ),
        case(
            "missing upstream revision",
            &format!(
                "{H}kind: PackageVariant\nmetadata: {{name: pv}}\nspec:\n  upstream: {{repo: {}, package: nginx, revision: v9}}\n  downstream: {{cluster: site-a, package: web}}\n",
                root().join("target/upstream-packages").display()
            ),
            "revision `v9` not found",
            "case.yaml",
        ),
        case(
            "unknown downstream cluster",
            &format!(
                "{H}kind: PackageVariant\nmetadata: {{name: pv}}\nspec:\n  upstream: {{repo: x, package: nginx, revision: v1}}\n  downstream: {{cluster: nowhere, package: web}}\n"
            ),
            "cluster `nowhere` does not exist",
            "case.yaml:6:",
        ),
        edit(
            "unknown policy cluster label operator",
            "matchLabels: {region: eu}}",
            "matchExpressions: [{key: region, operator: Exists, values: [eu]}]}",
            "operator Exists takes no values",
            "base.yaml:75:",
        ),
    ]
}

fn write_fleet(dir: &Path, c: &Case) {
    std::fs::create_dir_all(dir).unwrap();
    let mut base = BASE.to_string();
    if let Some((from, to)) = c.edit {
        assert!(base.contains(from));
        base = base.replace(from, to);
    }
    std::fs::write(dir.join("base.yaml"), base).unwrap();
    if !c.file.is_empty() {
        std::fs::write(dir.join("case.yaml"), &c.file).unwrap();
    }
}

#[test]
fn the_base_fleet_is_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet");
    write_fleet(&dir, &case("none", "", "", ""));
    ok(&atoll(&["validate", dir.to_str().unwrap()]));
}

#[test]
fn every_bad_input_has_its_own_message_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    write_fleet(&good, &case("none", "", "", ""));
    let repo = tmp.path().join("repo");
    ok(&atoll(&[
        "render",
        good.to_str().unwrap(),
        "--repo",
        repo.to_str().unwrap(),
    ]));
    let head_before = head(&repo);
    let files_before = files(&repo);
    let cases = cases();
    assert!(cases.len() >= 25, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("case{i}"));
        write_fleet(&dir, c);
        for cmd in ["validate", "render"] {
            let mut args = vec![cmd, dir.to_str().unwrap()];
            if cmd == "render" {
                args.extend(["--repo", repo.to_str().unwrap()]);
            }
            let out = atoll(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                failures.push(format!("[{}] {cmd} succeeded", c.name));
            } else if !err.contains(c.message) {
                failures.push(format!(
                    "[{}] {cmd}: expected `{}`, got:\n{err}",
                    c.name, c.message
                ));
            } else if !err.contains(c.place) {
                failures.push(format!(
                    "[{}] {cmd}: expected place `{}`, got:\n{err}",
                    c.name, c.place
                ));
            }
        }
        assert_eq!(head(&repo), head_before, "[{}] HEAD moved", c.name);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(files(&repo), files_before, "the work tree is untouched");
}

#[test]
fn all_errors_are_reported_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet");
    let c = case(
        "many",
        &format!(
            "{H}kind: Cluster\nmetadata: {{name: c2}}\nspec: {{catalog: nope}}\n---\n{H}kind: Team\nmetadata: {{name: Bad}}\n---\n{H}kind: Application\nmetadata: {{name: a2, namespace: ghost}}\nspec: {{git: {{repoURL: https://x}}}}\n"
        ),
        "",
        "",
    );
    write_fleet(&dir, &c);
    let out = atoll(&["validate", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("catalog `nope`")
            && err.contains("`Bad` is not a valid DNS label")
            && err.contains("team `ghost`"),
        "{err}"
    );
    assert!(err.contains("3 error(s); nothing was written"), "{err}");
}
