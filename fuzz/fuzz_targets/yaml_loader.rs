//! Any bytes through the declaration loader and validation: an error is fine, a panic, a
//! hang or an allocation beyond libFuzzer's limit is a finding.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        // The loader's own UTF-8 check must not panic either.
        let _ = atoll_model::yaml::text_of(data);
        return;
    };
    let mut decls = atoll_model::Declarations::default();
    let mut diags = Vec::new();
    atoll_model::load_str("fuzz.yaml", text, &mut decls, &mut diags);
    // Errors must point somewhere: positions are computed lazily, so ask for them.
    for d in &diags {
        let _ = d.to_string();
    }
    if diags.is_empty() {
        let _ = atoll_model::validate(decls).map_err(|d| d.0.iter().map(|x| x.to_string()).count());
    }
});
