//! Cutting one input into the pieces it is fed in, so every target checks that decoding does
//! not depend on how bytes arrive.

/// Splits `data` into consecutive chunks whose sizes come from `sizes`, cycled; empty `sizes`
/// gives `data` whole. A size byte `b` under 192 means `b % 64 + 1` bytes (mostly tiny
/// pieces, one byte at a time included); from 192 up it means `(b - 191) * 64` bytes.
///
/// The chunks joined are exactly `data`; no chunk is empty unless `data` is.
pub fn chunks<'a>(data: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    if sizes.is_empty() || data.is_empty() {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let b = sizes[i % sizes.len()];
        i += 1;
        let n = if b < 192 {
            usize::from(b % 64) + 1
        } else {
            usize::from(b - 191) * 64
        };
        let (head, tail) = rest.split_at(n.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// Splits a raw fuzz input into a prefix of `sizes` for [`chunks`] and the data: the first
/// byte says how many size bytes follow (0 to 7; with 0 the data is fed whole).
pub fn take_sizes(input: &[u8]) -> (&[u8], &[u8]) {
    let Some((&first, rest)) = input.split_first() else {
        return (&[], &[]);
    };
    let n = usize::from(first % 8).min(rest.len());
    rest.split_at(n)
}
