//! atoll's API: the `atoll.dev/v1alpha1` kinds, reading them from YAML with positions, and
//! validating them into a [`Model`] whose references all resolve.
//!
//! Every error is a [`Diagnostic`] naming file, line, column, object, field path and what was
//! expected; all errors of a load are reported together.

pub mod convert;
pub mod decl;
pub mod kinds;
pub mod load;
pub mod names;
pub mod parsed;
pub mod selector;
pub mod tosca;
pub mod types;
pub mod validate;
pub mod yaml;

pub use kinds::{KINDS, crds, is_namespaced};
pub use load::{
    Decl, Declarations, Diagnostic, Diagnostics, Origin, load_paths, load_str, load_value,
};
pub use types::*;
pub use validate::{Model, validate};

/// Loads and validates in one step.
pub fn load_model(paths: &[std::path::PathBuf]) -> Result<Model, Diagnostics> {
    let (decls, diags) = load::load_paths_lenient(paths);
    validated(decls, diags)
}

/// [`load_model`], taking unchanged files' declarations from `store`. Also returns what was
/// loaded besides the declarations: file digests and newly parsed files for the store.
pub fn load_model_with(
    paths: &[std::path::PathBuf],
    store: &dyn parsed::ParsedFiles,
) -> (Result<Model, Diagnostics>, load::Loaded) {
    let mut loaded = load::load_paths_with(paths, Some(store));
    let decls = std::mem::take(&mut loaded.decls);
    let diags = std::mem::take(&mut loaded.diags);
    (validated(decls, diags), loaded)
}

fn validated(decls: Declarations, mut diags: Vec<Diagnostic>) -> Result<Model, Diagnostics> {
    match validate(decls) {
        Ok(m) if diags.is_empty() => Ok(m),
        Ok(_) => Err(Diagnostics(diags)),
        Err(Diagnostics(more)) => {
            diags.extend(more);
            diags.sort();
            diags.dedup();
            Err(Diagnostics(diags))
        }
    }
}
