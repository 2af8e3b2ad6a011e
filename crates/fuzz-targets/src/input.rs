//! A reader that turns fuzzer bytes into choices. Past the end it answers zeros, so every
//! input, however short, is a complete (if dull) program: the fuzzer never wastes runs on
//! inputs that fail to parse, and a mutation changes one choice rather than all later ones.

#[derive(Debug)]
pub(crate) struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub(crate) fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub(crate) fn i64(&mut self) -> i64 {
        (u64::from(self.u32()) << 32 | u64::from(self.u32())) as i64
    }

    pub(crate) fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// A number in `0..n` (`n` > 0): one byte for small ranges, two for larger ones.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        let raw = if n <= 256 { usize::from(self.u8()) } else { usize::from(self.u16()) };
        raw % n.max(1)
    }

    /// One of `items` (which must not be empty).
    pub(crate) fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }

    /// Up to `max` raw bytes, length chosen by the input.
    pub(crate) fn bytes(&mut self, max: usize) -> &'a [u8] {
        let want = self.below(max + 1).min(self.data.len());
        let (taken, rest) = self.data.split_at(want);
        self.data = rest;
        taken
    }
}
