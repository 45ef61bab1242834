//! Items written in groups: the first item to wait starts one write, and that write takes
//! every item waiting when it runs, so a burst of items costs one write, not one each.

use parking_lot::{Mutex, MutexGuard};

/// What became of an item a [`Group`] took.
#[derive(Debug, PartialEq, Eq)]
pub enum Joined {
    /// Nothing was waiting: the caller starts the write that will take it.
    First,
    /// A write is on its way and will take it too.
    Queued,
}

/// The invariant: while any item waits, one write that will [`take`](Group::take) it is on
/// its way. A write that fails without taking must [`abandon`](Group::abandon) what waits.
pub struct Group<T> {
    waiting: Mutex<Vec<T>>,
    max: usize,
}

impl<T> Group<T> {
    pub fn new(max: usize) -> Self {
        assert!(max > 0);
        Group {
            waiting: Mutex::new(Vec::new()),
            max,
        }
    }

    /// Adds an item, or gives it back when `max` items wait already.
    pub fn join(&self, item: T) -> Result<Joined, T> {
        let mut waiting = self.lock();
        if waiting.len() >= self.max {
            return Err(item);
        }
        waiting.push(item);
        Ok(if waiting.len() == 1 {
            Joined::First
        } else {
            Joined::Queued
        })
    }

    /// Everything waiting, for the write that runs now.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.lock())
    }

    /// Gives up on everything waiting (after a write that failed), so the next item starts
    /// a write of its own. Returns how many were given up.
    pub fn abandon(&self) -> usize {
        self.take().len()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<T>> {
        self.waiting.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_item_waiting_starts_a_write_and_the_write_takes_them_all() {
        let group = Group::new(10);
        assert_eq!(group.join(1), Ok(Joined::First));
        assert_eq!(group.join(2), Ok(Joined::Queued));
        assert_eq!(group.join(3), Ok(Joined::Queued));
        assert_eq!(group.take(), vec![1, 2, 3]);
        assert_eq!(
            group.join(4),
            Ok(Joined::First),
            "after a take, the next item starts a write"
        );
    }

    #[test]
    fn a_full_group_gives_items_back_until_a_write_takes() {
        let group = Group::new(2);
        assert_eq!(group.join(1), Ok(Joined::First));
        assert_eq!(group.join(2), Ok(Joined::Queued));
        assert_eq!(group.join(3), Err(3), "the item comes back");
        assert_eq!(group.take(), vec![1, 2]);
        assert_eq!(group.join(3), Ok(Joined::First));
    }

    #[test]
    fn after_a_failed_write_is_abandoned_the_next_item_starts_a_write() {
        let group = Group::new(10);
        assert_eq!(group.join("a"), Ok(Joined::First));
        assert_eq!(group.join("b"), Ok(Joined::Queued));
        assert_eq!(group.abandon(), 2);
        assert_eq!(group.join("c"), Ok(Joined::First));
    }
}
