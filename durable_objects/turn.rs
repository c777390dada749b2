//! One event at a time in an object's core. Storage is synchronous, so an
//! event normally runs to its end without yielding to the runtime; a
//! server function that awaits something other than `ctx.db` yields for
//! one turn of the event loop before it is failed (docs/functions.md,
//! "The I/O rule"). An event delivered in that turn waits here for the
//! core instead of finding it borrowed (a panic, which would end the
//! object).

use std::cell::{RefCell, RefMut};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::ops::{Deref, DerefMut};
use std::task::{Poll, Waker};

pub struct Turns<T> {
    cell: RefCell<T>,
    waiters: RefCell<VecDeque<Waker>>,
}

/// The core, held for one event (or part of it).
pub struct Turn<'a, T> {
    inner: RefMut<'a, T>,
    waiters: &'a RefCell<VecDeque<Waker>>,
}

impl<T> Turns<T> {
    pub fn new(value: T) -> Self {
        Turns {
            cell: RefCell::new(value),
            waiters: RefCell::new(VecDeque::new()),
        }
    }

    /// The core, once no other event holds it.
    pub async fn take(&self) -> Turn<'_, T> {
        poll_fn(|cx| match self.cell.try_borrow_mut() {
            Ok(inner) => Poll::Ready(Turn {
                inner,
                waiters: &self.waiters,
            }),
            Err(_) => {
                self.waiters.borrow_mut().push_back(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

impl<T> Drop for Turn<'_, T> {
    fn drop(&mut self) {
        // The woken event polls after this borrow is released (wakes are
        // run later, on the runtime's queue).
        if let Some(w) = self.waiters.borrow_mut().pop_front() {
            w.wake();
        }
    }
}

impl<T> Deref for Turn<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for Turn<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}
