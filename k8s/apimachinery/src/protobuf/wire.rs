//! The protobuf wire format: a bounds-checked reader over one message.

use super::error::Problem;

/// A protobuf wire type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

impl Wire {
    pub(crate) fn number(self) -> u8 {
        match self {
            Wire::Varint => 0,
            Wire::Fixed64 => 1,
            Wire::Len => 2,
            Wire::Fixed32 => 5,
        }
    }
}

/// One field's value as it sits on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

impl Raw<'_> {
    pub(crate) fn wire(&self) -> Wire {
        match self {
            Raw::Varint(_) => Wire::Varint,
            Raw::Fixed64(_) => Wire::Fixed64,
            Raw::Len(_) => Wire::Len,
            Raw::Fixed32(_) => Wire::Fixed32,
        }
    }
}

/// Reads fields from the bytes of one message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, Problem> {
        let mut value = 0u64;
        for (i, &byte) in self.buf.iter().enumerate().take(10) {
            let bits = u64::from(byte & 0x7f);
            let shift = 7 * i;
            if i == 9 && bits > 1 {
                return Err(Problem::VarintOverflow);
            }
            value |= bits << shift;
            if byte < 0x80 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        if self.buf.len() >= 10 { Err(Problem::VarintOverflow) } else { Err(Problem::TruncatedVarint) }
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], Problem> {
        let left = self.buf.len();
        let n = usize::try_from(len).ok().filter(|n| *n <= left).ok_or(Problem::Truncated { len, left })?;
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next field: its number and value. Groups (wire types 3 and 4)
    /// are rejected: no Kubernetes type uses them.
    pub(crate) fn field(&mut self) -> Result<(u32, Raw<'a>), Problem> {
        let key = self.varint()?;
        let number =
            u32::try_from(key >> 3).ok().filter(|n| (1..1 << 29).contains(n)).ok_or(Problem::FieldNumber)?;
        let raw = match key & 7 {
            0 => Raw::Varint(self.varint()?),
            1 => Raw::Fixed64(u64::from_le_bytes(self.fixed::<8>()?)),
            2 => {
                let len = self.varint()?;
                Raw::Len(self.take(len)?)
            }
            5 => Raw::Fixed32(u32::from_le_bytes(self.fixed::<4>()?)),
            other => return Err(Problem::UnsupportedWireType(wire_byte(other))),
        };
        Ok((number, raw))
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], Problem> {
        let bytes = self.take(N as u64)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }
}

fn wire_byte(w: u64) -> u8 {
    // Only called with `key & 7`.
    u8::try_from(w).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        assert_eq!(Reader::new(&[0x96, 0x01]).varint(), Ok(150));
        assert_eq!(
            Reader::new(&[0xff; 9].iter().chain(&[0x01]).copied().collect::<Vec<_>>()).varint(),
            Ok(u64::MAX)
        );
        assert_eq!(Reader::new(&[0x80, 0x80]).varint(), Err(Problem::TruncatedVarint));
        assert_eq!(
            Reader::new(&[0xff; 9].iter().chain(&[0x02]).copied().collect::<Vec<_>>()).varint(),
            Err(Problem::VarintOverflow)
        );
        assert_eq!(Reader::new(&[0x80; 11]).varint(), Err(Problem::VarintOverflow));
    }

    #[test]
    fn fields_and_bounds() {
        let mut r = Reader::new(&[0x0a, 0x02, b'h', b'i', 0x10, 0x05, 0x19, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(r.field(), Ok((1, Raw::Len(b"hi"))));
        assert_eq!(r.field(), Ok((2, Raw::Varint(5))));
        assert_eq!(r.field(), Ok((3, Raw::Fixed64(1))));
        assert!(r.is_empty());
        assert_eq!(Reader::new(&[0x0a, 0x05, b'h']).field(), Err(Problem::Truncated { len: 5, left: 1 }));
        assert_eq!(Reader::new(&[0x0b]).field(), Err(Problem::UnsupportedWireType(3)));
        assert_eq!(Reader::new(&[0x00, 0x00]).field(), Err(Problem::FieldNumber));
        assert_eq!(Reader::new(&[0x1d, 1, 2]).field(), Err(Problem::Truncated { len: 4, left: 2 }));
    }
}
