//! The render memo is only an optimisation: after every kind of change, a render that recalls
//! the previous render's per-cluster results must give exactly what a render computing
//! everything gives — files, input digests, allocations, placements, and the memo itself.

use atoll_engine::Output;
use atoll_engine::memo::RenderMemo;
use atoll_model::Model;
use atoll_pipeline::HeadState;
use std::path::PathBuf;

fn edge_fleet() -> Model {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/edge-fleet");
    atoll_model::load_model(&[dir]).expect("the example fleet validates")
}

fn render(m: &Model, head: &HeadState, memo: Option<&RenderMemo>) -> Output {
    let upstreams = atoll_pipeline::fetch_upstreams(
        m,
        &atoll_pipeline::UpstreamSources::files(vec![std::path::PathBuf::from("/")]),
    )
    .unwrap();
    atoll_pipeline::render(m, head, &upstreams, memo).expect("renders")
}

fn head_after(out: &Output) -> HeadState {
    HeadState {
        allocations: out.allocations.clone(),
        inputs: out.inputs.clone(),
        clusters: out.clusters.clone(),
        ..Default::default()
    }
}

type Mutation = fn(&mut Model);

fn first_edge(m: &Model) -> String {
    m.clusters
        .keys()
        .find(|c| c.starts_with("edge-"))
        .expect("an edge cluster")
        .clone()
}

const MUTATIONS: &[(&str, Mutation)] = &[
    ("nothing", |_| {}),
    ("one cluster's labels", |m| {
        let c = first_edge(m);
        let labels = &mut m.clusters.get_mut(&c).unwrap().labels;
        labels.insert("tier".into(), "regional".into());
        labels.insert("gpu".into(), "true".into());
    }),
    ("a new cluster", |m| {
        let c = first_edge(m);
        let mut d = m.clusters[&c].clone();
        d.name = "edge-zz-new".into();
        m.clusters.insert(d.name.clone(), d);
    }),
    ("a removed cluster", |m| {
        let c = first_edge(m);
        m.clusters.remove(&c);
    }),
    ("a cluster's catalog", |m| {
        let c = first_edge(m);
        m.clusters.get_mut(&c).unwrap().spec.catalog = Some("regional".into());
    }),
    ("an application's labels", |m| {
        if let Some(a) = m.applications.values_mut().next() {
            a.labels.insert("tier".into(), "none".into());
        }
    }),
    ("a team", |m| {
        for t in m.teams.values_mut() {
            t.spec.readers.push("auditors".into());
        }
    }),
    ("a pool's blocks", |m| {
        for p in m.pools.values_mut() {
            p.spec.prefix_length = p.spec.prefix_length.map(|l| l + 1);
        }
    }),
];

#[test]
fn recalled_results_equal_computed_results_after_every_kind_of_change() {
    let base = edge_fleet();
    let first = render(&base, &HeadState::default(), None);
    assert!(!first.memo.clusters.is_empty());
    let head = head_after(&first);
    for (what, mutate) in MUTATIONS {
        let mut m = base.clone();
        mutate(&mut m);
        let recalled = render(&m, &head, Some(&first.memo));
        let computed = render(&m, &head, None);
        assert_eq!(recalled, computed, "{what}");
    }
}

/// A one-cluster change re-renders that cluster and no other, with the memo or without.
#[test]
fn a_label_change_renders_one_cluster() {
    let base = edge_fleet();
    let first = render(&base, &HeadState::default(), None);
    let head = head_after(&first);
    let mut m = base.clone();
    MUTATIONS[1].1(&mut m);
    let out = render(&m, &head, Some(&first.memo));
    assert_eq!(
        out.rendered.into_iter().collect::<Vec<_>>(),
        vec![first_edge(&base)]
    );
}

/// A memo of another fleet is of no use, and does no harm.
#[test]
fn a_foreign_memo_is_ignored() {
    let base = edge_fleet();
    let mut other = base.clone();
    MUTATIONS[7].1(&mut other);
    MUTATIONS[2].1(&mut other);
    let foreign = render(&other, &HeadState::default(), None).memo;
    assert_ne!(
        foreign.fleet,
        render(&base, &HeadState::default(), None).memo.fleet
    );
    assert_eq!(
        render(&base, &HeadState::default(), Some(&foreign)),
        render(&base, &HeadState::default(), None)
    );
}
