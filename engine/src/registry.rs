//! The translator type registry: type name (`cluster/distribute`) → option table and
//! constructor. The engine registers the client-side types; brickd adds the brick-side ones.

use crate::options::{OptionSpec, Options};
use crate::xlator::{XlatorBase, XlatorRef};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Builds a translator from its base (name, children) and validated options. The error is a
/// sentence for the operator; the graph builder adds the volfile line.
pub type Constructor = Arc<dyn Fn(XlatorBase, &Options) -> Result<XlatorRef, String> + Send + Sync>;

#[derive(Clone)]
pub struct XlatorType {
    pub type_name: &'static str,
    pub options: &'static [OptionSpec],
    /// Fewest and most subvolumes the type accepts (`usize::MAX` for any number).
    pub min_children: usize,
    pub max_children: usize,
    pub build: Constructor,
}

#[derive(Clone, Default)]
pub struct Registry {
    types: BTreeMap<&'static str, XlatorType>,
}

impl Registry {
    pub fn empty() -> Self {
        Registry::default()
    }

    pub fn register(&mut self, t: XlatorType) {
        self.types.insert(t.type_name, t);
    }

    pub fn get(&self, type_name: &str) -> Option<&XlatorType> {
        self.types.get(type_name)
    }

    pub fn types(&self) -> impl Iterator<Item = &XlatorType> {
        self.types.values()
    }
}
