//! Formatted lines, the [`Batch`] the delivery engine queues for this output (one chunk
//! per buffer received), so that neither queuing nor dropping the oldest allocates per point.

pub use alumet_delivery::Batch;

/// Formatted lines, each ending with `\n`, stored back to back.
#[derive(Debug, Default)]
pub struct Chunk {
    bytes: Vec<u8>,
    /// End offset (exclusive) of each line in `bytes`.
    ends: Vec<usize>,
    /// Index of the first line not yet taken or dropped.
    start: usize,
}

impl Chunk {
    /// The bytes, to format lines into; call [`Chunk::end_line`] after each line.
    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Marks the end of the line just written.
    pub fn end_line(&mut self) {
        self.ends.push(self.bytes.len());
    }

    /// The bytes written after the last line ended (the line being formatted).
    pub fn unended(&self) -> &[u8] {
        &self.bytes[self.offset(self.ends.len())..]
    }

    /// Forgets the bytes written after the last line ended.
    pub fn discard_unended(&mut self) {
        self.bytes.truncate(self.offset(self.ends.len()));
    }

    fn offset(&self, line: usize) -> usize {
        if line == 0 {
            0
        } else {
            self.ends[line - 1]
        }
    }

    /// The lines left, as one request body.
    pub fn body(&self) -> &[u8] {
        &self.bytes[self.offset(self.start)..]
    }

    /// Line `i` of those left (without its `\n`), if any.
    pub fn line(&self, i: usize) -> Option<&[u8]> {
        let i = self.start + i;
        let end = *self.ends.get(i)?;
        Some(&self.bytes[self.offset(i)..end.saturating_sub(1)])
    }
}

impl Batch for Chunk {
    fn len(&self) -> usize {
        self.ends.len() - self.start
    }

    fn drop_front(&mut self, n: usize) {
        self.start += n.min(self.len());
    }

    /// Copies the first `n` lines left (at most all of them) to the end of `into`.
    fn move_front(&mut self, n: usize, into: &mut Chunk) {
        let n = n.min(self.len());
        let from = self.offset(self.start);
        let to = self.offset(self.start + n);
        let base = into.bytes.len();
        into.bytes.extend_from_slice(&self.bytes[from..to]);
        let ends = &self.ends[self.start..self.start + n];
        into.ends.extend(ends.iter().map(|e| e - from + base));
        self.start += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alumet_delivery::batch::Queue;

    fn chunk(lines: &[&str]) -> Chunk {
        let mut c = Chunk::default();
        for l in lines {
            c.bytes_mut().extend_from_slice(l.as_bytes());
            c.bytes_mut().push(b'\n');
            c.end_line();
        }
        c
    }

    fn text(c: &Chunk) -> String {
        String::from_utf8(c.body().to_vec()).expect("utf-8")
    }

    #[test]
    fn take_splits_and_joins_chunks_in_order() {
        let mut q = Queue::default();
        q.push_back(chunk(&["a", "b", "c"]));
        q.push_back(chunk(&["d", "e"]));
        assert_eq!(q.len(), 5);
        let first = q.take(2);
        assert_eq!(text(&first), "a\nb\n");
        assert_eq!(first.line(1), Some(&b"b"[..]));
        let second = q.take(10);
        assert_eq!(text(&second), "c\nd\ne\n");
        assert_eq!(second.line(2), Some(&b"e"[..]));
        assert!(q.is_empty());
        q.push_front(second);
        assert_eq!(text(&q.take(3)), "c\nd\ne\n");
    }

    #[test]
    fn a_line_being_formatted_can_be_discarded() {
        let mut c = chunk(&["a"]);
        c.bytes_mut().extend_from_slice(b"bc");
        assert_eq!(c.unended(), b"bc");
        c.discard_unended();
        assert_eq!((c.unended(), text(&c).as_str()), (&b""[..], "a\n"));
    }

    #[test]
    fn drop_oldest_counts_exactly() {
        let mut q = Queue::default();
        q.push_back(chunk(&["a", "b", "c"]));
        q.push_back(chunk(&["d", "e"]));
        assert_eq!(q.drop_oldest(4), 4);
        assert_eq!(q.len(), 1);
        assert_eq!(text(&q.take(5)), "e\n");
        assert_eq!(q.drop_oldest(3), 0);
    }
}
