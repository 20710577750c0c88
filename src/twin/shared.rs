//! Values a test keeps *in* a twin namespace ([`Twin::shared`](super::Twin::shared)):
//! one per type, seen by every handle, process and participant of the
//! namespace, gone with it.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;

use crate::sync::{Arc, Mutex};

type Value = Arc<dyn Any + Send + Sync>;

/// The namespace's shared values, by type.
#[derive(Default)]
pub(crate) struct SharedValues(Mutex<HashMap<TypeId, Value>>);

impl fmt::Debug for SharedValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedValues({} types)", self.0.lock().len())
    }
}

impl SharedValues {
    /// The value of type `T`, made with `T::default()` on first use.
    /// `T::default()` is the caller's code: it runs with no lock held, and
    /// if two threads race to make the first value, one is kept and the
    /// other dropped, also with no lock held.
    pub(crate) fn get_or_default<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let found = self.0.lock().get(&TypeId::of::<T>()).cloned();
        let value = match found {
            Some(v) => v,
            None => {
                let fresh: Value = Arc::new(T::default());
                let kept = Arc::clone(
                    self.0
                        .lock()
                        .entry(TypeId::of::<T>())
                        .or_insert_with(|| Arc::clone(&fresh)),
                );
                drop(fresh); // the loser of a race, dropped unlocked
                kept
            }
        };
        match value.downcast::<T>() {
            Ok(v) => v,
            // Stored under T's own TypeId: always a T.
            Err(_) => unreachable!("a shared value stored under another type's id"),
        }
    }
}

#[cfg(all(test, not(mqtwin_loom)))]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    static STORE: OnceLock<SharedValues> = OnceLock::new();

    /// A `Default` that itself takes another shared value: it would
    /// deadlock if `default()` ran under the store's lock.
    struct Outer(Arc<u32>);
    impl Default for Outer {
        fn default() -> Self {
            Outer(
                STORE
                    .get_or_init(SharedValues::default)
                    .get_or_default::<u32>(),
            )
        }
    }

    #[test]
    fn default_runs_unlocked_and_one_value_per_type() {
        let store = STORE.get_or_init(SharedValues::default);
        let a = store.get_or_default::<Outer>();
        let b = store.get_or_default::<Outer>();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(Arc::ptr_eq(&a.0, &store.get_or_default::<u32>()));
        assert_eq!(*store.get_or_default::<String>(), "");
    }
}
