//! gix's progress ([`gix::progress::NestedProgress`]) drawn as mooring's
//! progress lines ([`crate::progress`]): each phase gix starts (receiving
//! the pack in bytes, indexing and resolving objects) becomes a task of
//! its own, labelled with what is fetched and the phase's name, and ends
//! with the phase. gix counts bytes straight into the task's counter.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use gix::progress::{Count, Id, MessageLevel, NestedProgress, Progress, Step, StepShared, Unit};

use crate::progress::{self as lines, Task};

/// One phase (or the root, which draws nothing itself).
pub struct Lines {
    /// What is fetched: "fetching https://…".
    what: Arc<str>,
    name: String,
    task: Option<Task>,
    /// Counted before the phase's unit is known (no task yet).
    early: StepShared,
}

impl Lines {
    pub fn new(what: impl Into<String>) -> Lines {
        Lines {
            what: what.into().into(),
            name: String::new(),
            task: None,
            early: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn label(&self) -> String {
        if self.name.is_empty() {
            self.what.to_string()
        } else {
            format!("{}: {}", self.what, self.name)
        }
    }
}

/// Whether gix counts this phase in bytes (its byte unit displays as "B"
/// or, with byte sizes, as a size).
fn is_bytes(unit: &Unit) -> bool {
    let mut shown = String::new();
    let _ = unit.as_display_value().display_unit(&mut shown, 1);
    shown.trim().ends_with('B')
}

impl Count for Lines {
    fn set(&self, step: Step) {
        match &self.task {
            Some(t) => t.set(step as u64),
            None => self.early.store(step, std::sync::atomic::Ordering::Relaxed),
        }
    }

    fn step(&self) -> Step {
        self.counter().load(std::sync::atomic::Ordering::Relaxed)
    }

    fn inc_by(&self, step: Step) {
        match &self.task {
            Some(t) => t.inc(step as u64),
            None => {
                self.early.fetch_add(step, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    fn counter(&self) -> StepShared {
        match &self.task {
            Some(t) => t.counter(),
            None => self.early.clone(),
        }
    }
}

impl Progress for Lines {
    fn init(&mut self, max: Option<Step>, unit: Option<Unit>) {
        let unit = match unit {
            Some(u) if is_bytes(&u) => lines::Unit::Bytes,
            _ => lines::Unit::Items("objects"),
        };
        // A new phase under the same handle replaces the last one.
        self.task = Some(lines::start(self.label(), unit, max.map(|m| m as u64)));
    }

    fn set_max(&mut self, max: Option<Step>) -> Option<Step> {
        if let Some(t) = &self.task {
            t.set_total(max.map(|m| m as u64));
        }
        None
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
        if let Some(t) = &self.task {
            t.set_label(self.label());
        }
    }

    fn name(&self) -> Option<String> {
        Some(self.name.clone())
    }

    fn id(&self) -> Id {
        *b"\0\0\0\0"
    }

    fn message(&self, _level: MessageLevel, _message: String) {}
}

impl NestedProgress for Lines {
    type SubProgress = Lines;

    fn add_child(&mut self, name: impl Into<String>) -> Lines {
        Lines {
            what: self.what.clone(),
            name: name.into(),
            task: None,
            early: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn add_child_with_id(&mut self, name: impl Into<String>, _id: Id) -> Lines {
        self.add_child(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_take_their_unit_from_gix_and_count_before_and_after_init() {
        assert!(is_bytes(&gix::progress::bytes().expect("a unit")));
        assert!(!is_bytes(&gix::progress::count("objects").expect("a unit")));
        let mut root = Lines::new("fetching https://example.com/r.git");
        let mut pack = root.add_child("receiving pack");
        assert_eq!(pack.label(), "fetching https://example.com/r.git: receiving pack");
        pack.inc_by(3);
        assert_eq!(pack.step(), 3);
        pack.init(Some(10), gix::progress::bytes());
        // Not drawn (no terminal here): the task's counter is its own.
        pack.counter().fetch_add(2, std::sync::atomic::Ordering::Relaxed);
        pack.inc_by(1);
        pack.set_name("read pack".into());
        assert_eq!(pack.name().as_deref(), Some("read pack"));
    }
}
