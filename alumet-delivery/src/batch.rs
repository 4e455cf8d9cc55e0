//! What the engine buffers: batches of encoded points ([`Batch`], one per buffer the
//! output received), in a FIFO counted in points ([`Queue`]), so that neither queuing nor
//! dropping the oldest allocates per point.

use std::collections::VecDeque;

/// A sequence of points, oldest first, in whatever form the output sends them.
pub trait Batch: Default + Send + 'static {
    /// Points left.
    fn len(&self) -> usize;

    /// Whether no point is left.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets the first `n` points (at most all of them).
    fn drop_front(&mut self, n: usize);

    /// Moves the first `n` points (at most all of them) to the end of `into`.
    fn move_front(&mut self, n: usize, into: &mut Self);
}

/// The simplest [`Batch`]: a vector of items, one per point.
#[derive(Debug, Clone, PartialEq)]
pub struct Items<T> {
    items: Vec<T>,
    /// Index of the first item not yet taken or dropped.
    start: usize,
}

impl<T> Default for Items<T> {
    fn default() -> Self {
        Items {
            items: Vec::new(),
            start: 0,
        }
    }
}

impl<T> Items<T> {
    /// A batch of these items.
    pub fn new(items: Vec<T>) -> Self {
        Items { items, start: 0 }
    }

    /// The items left.
    pub fn as_slice(&self) -> &[T] {
        &self.items[self.start..]
    }

    /// Adds an item at the end.
    pub fn push(&mut self, item: T) {
        self.items.push(item);
    }
}

impl<T: Clone + Send + 'static> Batch for Items<T> {
    fn len(&self) -> usize {
        self.items.len() - self.start
    }

    fn drop_front(&mut self, n: usize) {
        self.start += n.min(self.len());
        if self.start == self.items.len() {
            self.items.clear();
            self.start = 0;
        }
    }

    fn move_front(&mut self, n: usize, into: &mut Self) {
        let n = n.min(self.len());
        into.items
            .extend_from_slice(&self.items[self.start..self.start + n]);
        self.drop_front(n);
    }
}

/// A FIFO of batches, counted in points.
#[derive(Debug)]
pub struct Queue<B> {
    batches: VecDeque<B>,
    len: usize,
}

impl<B> Default for Queue<B> {
    fn default() -> Self {
        Queue {
            batches: VecDeque::new(),
            len: 0,
        }
    }
}

impl<B: Batch> Queue<B> {
    /// Points queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no point is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a batch after the others.
    pub fn push_back(&mut self, batch: B) {
        if !batch.is_empty() {
            self.len += batch.len();
            self.batches.push_back(batch);
        }
    }

    /// Puts a batch back before the others (one whose delivery failed).
    pub fn push_front(&mut self, batch: B) {
        if !batch.is_empty() {
            self.len += batch.len();
            self.batches.push_front(batch);
        }
    }

    /// Drops up to `n` of the oldest points; returns how many were dropped.
    pub fn drop_oldest(&mut self, n: usize) -> usize {
        let mut dropped = 0;
        while dropped < n {
            let Some(front) = self.batches.front_mut() else {
                break;
            };
            let k = (n - dropped).min(front.len());
            front.drop_front(k);
            dropped += k;
            if front.is_empty() {
                self.batches.pop_front();
            }
        }
        self.len -= dropped;
        dropped
    }

    /// Takes up to `max` of the oldest points, as one batch (a whole batch that fits is
    /// moved, not copied).
    pub fn take(&mut self, max: usize) -> B {
        let mut out = B::default();
        while out.len() < max {
            let Some(mut front) = self.batches.pop_front() else {
                break;
            };
            let need = max - out.len();
            if out.is_empty() && front.len() <= need {
                out = front;
                continue;
            }
            front.move_front(need, &mut out);
            if !front.is_empty() {
                self.batches.push_front(front);
            }
        }
        self.len -= out.len();
        out
    }
}

/// Checks the batching settings every network output has: a batch of at least one point,
/// a buffer that holds at least one batch, a request timeout and a flush interval longer
/// than zero. The error names the key and gives a value to write.
pub fn check_limits(
    batch_size: usize,
    max_buffered_points: usize,
    timeout: std::time::Duration,
    flush_interval: std::time::Duration,
) -> Result<(), String> {
    if batch_size == 0 {
        return Err("batch_size must be at least 1 (2000, say)".into());
    }
    if max_buffered_points < batch_size {
        return Err(format!(
            "max_buffered_points ({max_buffered_points}) must be at least batch_size ({batch_size})"
        ));
    }
    if timeout.is_zero() {
        return Err("timeout must be longer than zero (\"5s\", say)".into());
    }
    if flush_interval.is_zero() {
        return Err("flush_interval must be longer than zero (\"1s\", say)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(v: &[u32]) -> Items<u32> {
        Items::new(v.to_vec())
    }

    #[test]
    fn take_splits_and_joins_batches_in_order() {
        let mut q = Queue::default();
        q.push_back(items(&[1, 2, 3]));
        q.push_back(items(&[4, 5]));
        assert_eq!(q.len(), 5);
        assert_eq!(q.take(2).as_slice(), &[1, 2]);
        let rest = q.take(10);
        assert_eq!(rest.as_slice(), &[3, 4, 5]);
        assert!(q.is_empty());
        q.push_front(rest);
        assert_eq!(q.take(3).as_slice(), &[3, 4, 5]);
    }

    #[test]
    fn drop_oldest_counts_exactly() {
        let mut q = Queue::default();
        q.push_back(items(&[1, 2, 3]));
        q.push_back(items(&[4, 5]));
        assert_eq!(q.drop_oldest(4), 4);
        assert_eq!(q.len(), 1);
        assert_eq!(q.take(5).as_slice(), &[5]);
        assert_eq!(q.drop_oldest(3), 0);
    }

    #[test]
    fn empty_batches_are_not_queued() {
        let mut q: Queue<Items<u32>> = Queue::default();
        q.push_back(Items::default());
        q.push_front(Items::default());
        assert!(q.is_empty());
        assert!(q.take(10).is_empty());
    }
}
