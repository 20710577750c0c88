//! Backend choice at run time: [`DynNamespace`], the object-safe face of
//! every [`Namespace`], and [`TryClone`], `dup` for generic code.

use std::time::SystemTime;

use crate::error::Error;
use crate::options::OpenOptions;
use crate::queue::{MessageQueue, Namespace};

/// `dup` for generic code: another handle to the same open description,
/// sharing its non-blocking flag (see
/// [`twin::Queue::try_clone`](crate::twin::Queue::try_clone) and the kernel
/// backend's `posix::Queue::try_clone`).
///
/// Every [`Namespace::Queue`] implements it, and so does
/// `Box<dyn MessageQueue>` (through [`MessageQueue::try_clone_box`]).
///
/// ```
/// use mqtwin::{MessageQueue, Namespace, OpenOptions, TryClone};
///
/// fn sender_and_receiver<N: Namespace>(ns: &N) -> Result<(N::Queue, N::Queue), mqtwin::Error> {
///     let q = ns.open("/pair", &OpenOptions::read_write().create())?;
///     let dup = q.try_clone()?;
///     Ok((q, dup))
/// }
/// let (tx, rx) = sender_and_receiver(&mqtwin::twin::Twin::new())?;
/// tx.send(b"x", 0)?;
/// assert_eq!(rx.try_receive_vec()?, (b"x".to_vec(), 0));
/// # Ok::<(), mqtwin::Error>(())
/// ```
pub trait TryClone: Sized {
    /// Another handle to the same open description (`dup`).
    ///
    /// # Errors
    ///
    /// [`Error::ResourceLimit`] when the process is out of descriptors
    /// (kernel backend); the twin never fails.
    fn try_clone(&self) -> Result<Self, Error>;
}

impl TryClone for Box<dyn MessageQueue> {
    fn try_clone(&self) -> Result<Self, Error> {
        (**self).try_clone_box()
    }
}

/// A [`Namespace`] behind a trait object, for a binary that picks its
/// backend at run time (say, the twin for `--dry-run` and the kernel
/// otherwise). Every namespace implements it; `Box<dyn DynNamespace>` is
/// itself a [`Namespace`] whose queues are `Box<dyn MessageQueue>`, so code
/// generic over `Namespace` takes it unchanged.
///
/// Its methods have their own names (`open_boxed`, …) so that they never
/// clash with [`Namespace`]'s when both traits are in scope.
///
/// ```
/// use mqtwin::{DynNamespace, MessageQueue, Namespace, OpenOptions, twin::Twin};
///
/// fn backend(dry_run: bool) -> Box<dyn DynNamespace> {
///     if dry_run {
///         Box::new(Twin::new())
///     } else {
///         # #[cfg(all(target_os = "linux", feature = "posix"))]
///         # return Box::new(mqtwin::posix::Kernel);
///         # #[cfg(not(all(target_os = "linux", feature = "posix")))]
///         # return Box::new(Twin::new());
///         // Box::new(mqtwin::posix::Kernel)
///     }
/// }
///
/// fn publish<N: Namespace>(ns: &N) -> Result<(), mqtwin::Error> {
///     let q = ns.open("/events", &OpenOptions::write_only().create())?;
///     q.send(b"started", 0)
/// }
///
/// let ns = backend(true);
/// publish(&ns)?;
/// let q = ns.open("/events", &OpenOptions::read_only())?; // a Box<dyn MessageQueue>
/// assert_eq!(q.try_receive_vec()?, (b"started".to_vec(), 0));
/// ns.unlink("/events")?;
/// # Ok::<(), mqtwin::Error>(())
/// ```
pub trait DynNamespace: Send + Sync {
    /// [`Namespace::open`], returning a boxed handle.
    ///
    /// # Errors
    ///
    /// As [`Namespace::open`].
    fn open_boxed(&self, name: &str, options: &OpenOptions)
        -> Result<Box<dyn MessageQueue>, Error>;

    /// [`Namespace::unlink`].
    ///
    /// # Errors
    ///
    /// As [`Namespace::unlink`].
    fn unlink_dyn(&self, name: &str) -> Result<(), Error>;

    /// [`Namespace::now`].
    fn now_dyn(&self) -> SystemTime;
}

impl<N: Namespace> DynNamespace for N {
    fn open_boxed(
        &self,
        name: &str,
        options: &OpenOptions,
    ) -> Result<Box<dyn MessageQueue>, Error> {
        Ok(Box::new(self.open(name, options)?))
    }

    fn unlink_dyn(&self, name: &str) -> Result<(), Error> {
        self.unlink(name)
    }

    fn now_dyn(&self) -> SystemTime {
        self.now()
    }
}

impl Namespace for Box<dyn DynNamespace + '_> {
    type Queue = Box<dyn MessageQueue>;

    fn open(&self, name: &str, options: &OpenOptions) -> Result<Self::Queue, Error> {
        (**self).open_boxed(name, options)
    }

    fn unlink(&self, name: &str) -> Result<(), Error> {
        (**self).unlink_dyn(name)
    }

    fn now(&self) -> SystemTime {
        (**self).now_dyn()
    }
}

impl<N: Namespace> Namespace for &N {
    type Queue = N::Queue;

    fn open(&self, name: &str, options: &OpenOptions) -> Result<Self::Queue, Error> {
        (**self).open(name, options)
    }

    fn unlink(&self, name: &str) -> Result<(), Error> {
        (**self).unlink(name)
    }

    fn now(&self) -> SystemTime {
        (**self).now()
    }
}
