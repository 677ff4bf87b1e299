//! Any text through the label-selector parser; what parses must match without panicking and
//! must round-trip its own requirements through the structured form.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(s) = atoll_model::selector::Selector::parse(text) {
        let mut labels = BTreeMap::new();
        for r in &s.0 {
            labels.insert(r.key.clone(), r.values.first().cloned().unwrap_or_default());
        }
        let _ = s.matches(&labels);
        let _ = s.matches(&BTreeMap::new());
    }
});
