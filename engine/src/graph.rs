//! Graph builder: a volfile and a registry make a linked translator graph.

use crate::fop::{Event, Upcall};
use crate::options::Options;
use crate::registry::Registry;
use crate::volfile::{Volfile, VolfileError};
use crate::xlator::{Xlator, XlatorBase, XlatorRef, link_parents};
use crate::xlators::cluster::replicate::{Afr, Replicate};
use crate::xlators::protocol::client::Client;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error(transparent)]
    Volfile(#[from] VolfileError),
    #[error("volfile line {line}: volume {volume:?}: {msg}")]
    Invalid {
        line: usize,
        volume: String,
        msg: String,
    },
    #[error("translator {volume:?} failed to start: {errno}")]
    Init {
        volume: String,
        errno: crate::fop::Errno,
    },
}

pub struct Graph {
    top: XlatorRef,
    by_name: HashMap<String, XlatorRef>,
    /// Bottom-up order (children before parents).
    order: Vec<XlatorRef>,
    sink: Arc<Sink>,
    /// How many references to `top` the graph holds itself (see `in_use`).
    own: usize,
}

/// A `protocol/client`'s connection to its brick, as the brick RPC sees it: connected while
/// its pings are answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrickLink {
    /// The client translator's name (VOLUME-client-N).
    pub name: String,
    pub connected: bool,
    /// Why it last failed, if it did.
    pub last_error: Option<String>,
}

fn link_of(x: &XlatorRef) -> Option<BrickLink> {
    let c = x.as_any()?.downcast_ref::<Client>()?;
    Some(BrickLink {
        name: x.name().to_string(),
        connected: c.is_connected(),
        last_error: c.last_error(),
    })
}

/// The parent of the top translator: turns its up/down events into a watch channel
/// that frontends wait on.
struct Sink {
    base: XlatorBase,
    up: watch::Sender<bool>,
    /// Who hears the upcalls that reach the top (a FUSE mount telling its kernel).
    upcalls: parking_lot::Mutex<Vec<mpsc::UnboundedSender<Upcall>>>,
}

#[async_trait]
impl Xlator for Sink {
    fn base(&self) -> &XlatorBase {
        &self.base
    }
    async fn notify(&self, event: Event, _from: usize) {
        match event {
            Event::ChildUp => self.up.send_replace(true),
            Event::ChildDown => self.up.send_replace(false),
            Event::ChildConnecting => false,
            Event::Upcall(u) => {
                self.upcalls.lock().retain(|tx| tx.send(u).is_ok());
                false
            }
        };
    }
}

impl Graph {
    pub fn from_text(text: &str, registry: &Registry) -> Result<Graph, GraphError> {
        Graph::build(&Volfile::parse(text)?, registry)
    }

    pub fn build(volfile: &Volfile, registry: &Registry) -> Result<Graph, GraphError> {
        let mut by_name: HashMap<String, XlatorRef> = HashMap::new();
        let mut order = Vec::new();
        let invalid = |v: &crate::volfile::VolumeDef, msg: String| GraphError::Invalid {
            line: v.line,
            volume: v.name.clone(),
            msg,
        };
        for v in &volfile.volumes {
            let t = registry.get(&v.type_name).ok_or_else(|| {
                let known: Vec<_> = registry.types().map(|t| t.type_name).collect();
                invalid(
                    v,
                    format!(
                        "unknown type {:?} (known: {})",
                        v.type_name,
                        known.join(", ")
                    ),
                )
            })?;
            for (k, val) in &v.options {
                let spec = t.options.iter().find(|s| s.matches(k)).ok_or_else(|| {
                    let keys: Vec<_> = t.options.iter().map(|s| s.key).collect();
                    invalid(
                        v,
                        format!(
                            "{} has no option {k:?} (options: {})",
                            t.type_name,
                            keys.join(", ")
                        ),
                    )
                })?;
                spec.validate(val)
                    .map_err(|m| invalid(v, format!("option {k}: {m}")))?;
            }
            let n = v.subvolumes.len();
            if n < t.min_children || n > t.max_children {
                let want = if t.max_children == usize::MAX {
                    format!("at least {}", t.min_children)
                } else if t.min_children == t.max_children {
                    format!("exactly {}", t.min_children)
                } else {
                    format!("{}..={}", t.min_children, t.max_children)
                };
                return Err(invalid(
                    v,
                    format!("{} takes {want} subvolumes, got {n}", t.type_name),
                ));
            }
            let children = v.subvolumes.iter().map(|s| by_name[s].clone()).collect();
            let opts = Options::resolve(t.options, &v.options);
            let base = XlatorBase::new(&v.name, t.type_name, children);
            let x = (t.build)(base, &opts).map_err(|m| invalid(v, m))?;
            by_name.insert(v.name.clone(), x.clone());
            order.push(x);
        }
        let top = by_name[&volfile.top().name].clone();
        // Only what the top reaches is part of the graph, as in GlusterFS.
        let mut reach = std::collections::HashSet::new();
        let mut stack = vec![top.clone()];
        while let Some(x) = stack.pop() {
            if reach.insert(x.base().id) {
                stack.extend(x.base().children.iter().cloned());
            }
        }
        order.retain(|x| reach.contains(&x.base().id));
        by_name.retain(|_, x| reach.contains(&x.base().id));
        let (up, _) = watch::channel(false);
        let sink = Arc::new(Sink {
            base: XlatorBase::new("top-sink", "meta/sink", vec![top.clone()]),
            up,
            upcalls: parking_lot::Mutex::new(Vec::new()),
        });
        Ok(Graph {
            own: Arc::strong_count(&top),
            top,
            by_name,
            order,
            sink,
        })
    }

    /// How many callers hold the graph's top right now: each fop a frontend sends holds it
    /// until the fop returns, so 0 means no fop is running on this graph (one being
    /// replaced can then let its bricks go).
    pub fn in_use(&self) -> usize {
        Arc::strong_count(&self.top).saturating_sub(self.own)
    }

    pub fn top(&self) -> XlatorRef {
        self.top.clone()
    }

    /// Every translator, children before parents.
    pub fn xlators(&self) -> &[XlatorRef] {
        &self.order
    }

    pub fn get(&self, name: &str) -> Option<XlatorRef> {
        self.by_name.get(name).cloned()
    }

    /// The graph lists its healers: the shared state of every replica set (`cluster/replicate`),
    /// children before parents.
    pub fn replica_sets(&self) -> Vec<Arc<Afr>> {
        self.order
            .iter()
            .filter_map(|x| {
                x.as_any()
                    .and_then(|a| a.downcast_ref::<Replicate>())
                    .map(|r| r.afr().clone())
            })
            .collect()
    }

    /// Before another graph takes this one's place: every `performance/write-behind` of it
    /// writes through from now on and sends what it answered early to the bricks, since the
    /// new graph's translators know nothing of it.
    pub async fn settle_writes_behind(&self) {
        for x in &self.order {
            if let Some(wb) = x.as_any().and_then(|a| {
                a.downcast_ref::<crate::xlators::performance::write_behind::WriteBehind>()
            }) {
                wb.settle().await;
            }
        }
    }

    /// The brick RPC link of every `protocol/client` of the graph, children before parents.
    pub fn brick_links(&self) -> Vec<BrickLink> {
        self.order.iter().filter_map(link_of).collect()
    }

    /// The brick RPC link of the `protocol/client` called `name`: None when the graph has no
    /// translator of that name, or it is not a `protocol/client`.
    pub fn brick_link(&self, name: &str) -> Option<BrickLink> {
        self.by_name.get(name).and_then(link_of)
    }

    /// True while the top translator reports that it is up.
    pub fn events(&self) -> watch::Receiver<bool> {
        self.sink.up.subscribe()
    }

    /// The cache invalidations that reach the top of the graph (after md-cache has dropped
    /// what they name), for a frontend that caches too: the kernel of a FUSE mount.
    /// Unbounded, as a lost invalidation is a stale cache; they come one per change another
    /// client makes to an inode this one looked at.
    pub fn upcalls(&self) -> mpsc::UnboundedReceiver<Upcall> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.sink.upcalls.lock().push(tx);
        rx
    }

    /// Links parents and starts every translator, children first.
    pub async fn init(&self) -> Result<(), GraphError> {
        let sink: XlatorRef = self.sink.clone();
        link_parents(&sink);
        for x in &self.order {
            x.init().await.map_err(|errno| GraphError::Init {
                volume: x.name().to_string(),
                errno,
            })?;
        }
        Ok(())
    }

    /// Waits until the top reports up, or the timeout passes; returns whether it is up.
    pub async fn wait_up(&self, timeout: std::time::Duration) -> bool {
        let mut rx = self.events();
        tokio::time::timeout(timeout, rx.wait_for(|up| *up))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    pub async fn fini(&self) {
        for x in self.order.iter().rev() {
            x.fini().await;
        }
    }
}

/// Every type's option table, for `gwctl volume set help`.
pub fn options_help(registry: &Registry) -> String {
    let mut out = String::new();
    for t in registry.types() {
        out.push_str(&format!("{}\n", t.type_name));
        for o in t.options {
            out.push_str(&format!(
                "    {:<28} {:<24} default {:<10} {}\n",
                o.key,
                format!("{:?}", o.kind),
                o.default.unwrap_or("-"),
                o.doc
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{OptKind, OptionSpec};
    use crate::registry::XlatorType;

    struct Leaf {
        base: XlatorBase,
    }
    #[async_trait]
    impl Xlator for Leaf {
        fn base(&self) -> &XlatorBase {
            &self.base
        }
        async fn init(&self) -> crate::fop::Result<()> {
            self.base.notify_parents(Event::ChildUp).await;
            Ok(())
        }
    }
    struct Pass {
        base: XlatorBase,
    }
    impl Xlator for Pass {
        fn base(&self) -> &XlatorBase {
            &self.base
        }
    }

    const LEAF_OPTS: &[OptionSpec] = &[OptionSpec::new(
        "size",
        OptKind::Size,
        Some("4KB"),
        "a size",
    )];

    fn registry() -> Registry {
        let mut r = Registry::empty();
        r.register(XlatorType {
            type_name: "test/leaf",
            options: LEAF_OPTS,
            min_children: 0,
            max_children: 0,
            build: Arc::new(|base, o| {
                assert!(o.get("size").is_some());
                Ok(Arc::new(Leaf { base }))
            }),
        });
        r.register(XlatorType {
            type_name: "test/pass",
            options: &[],
            min_children: 1,
            max_children: usize::MAX,
            build: Arc::new(|base, _| Ok(Arc::new(Pass { base }))),
        });
        r
    }

    #[tokio::test]
    async fn builds_links_and_reports_up_through_the_sink() {
        let g = Graph::from_text(
            "volume a\n type test/leaf\n option size 1MB\nend-volume\nvolume b\n type test/pass\n subvolumes a\nend-volume\n",
            &registry(),
        )
        .unwrap();
        assert_eq!(g.top().name(), "b");
        assert!(g.get("a").is_some());
        // Neither is a protocol/client nor a cluster/replicate.
        assert!(g.brick_link("a").is_none() && g.brick_link("nope").is_none());
        assert!(g.brick_links().is_empty() && g.replica_sets().is_empty());
        g.init().await.unwrap();
        assert!(g.wait_up(std::time::Duration::from_secs(1)).await);
        // A caller holding the top (a fop on its way) is counted until it lets go.
        assert_eq!(g.in_use(), 0);
        let held = g.top();
        assert_eq!(g.in_use(), 1);
        drop(held);
        assert_eq!(g.in_use(), 0);
    }

    #[test]
    fn rejects_unknown_types_options_values_and_child_counts_with_the_line() {
        let r = registry();
        let e = Graph::from_text("volume a\n type test/nope\nend-volume\n", &r)
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("line 1") && e.to_string().contains("test/leaf"),
            "{e}"
        );
        let e = Graph::from_text(
            "volume a\n type test/leaf\n option colour red\nend-volume\n",
            &r,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("no option \"colour\""), "{e}");
        let e = Graph::from_text(
            "volume a\n type test/leaf\n option size lots\nend-volume\n",
            &r,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("size"), "{e}");
        let e = Graph::from_text("volume a\n type test/pass\nend-volume\n", &r)
            .err()
            .unwrap();
        assert!(e.to_string().contains("at least 1"), "{e}");
    }
}
