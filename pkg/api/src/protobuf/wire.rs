//! The protobuf wire format: a reader over a byte slice (varints, length-delimited fields, fixed
//! 32/64-bit values) and a writer. Every length read is checked against what is left, so a
//! hostile body can make the reader fail but never read past the end or allocate more than the
//! body's size.

use super::Error;

/// Wire type of a field's key (the low three bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireType {
    /// int32, int64, bool, enum.
    Varint,
    /// fixed64, double.
    Fixed64,
    /// string, bytes, messages, packed repeated scalars.
    Len,
    /// fixed32, float.
    Fixed32,
}

/// One field value as read off the wire, before the schema gives it meaning.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Raw<'a> {
    /// A varint.
    Varint(u64),
    /// Eight little-endian bytes.
    Fixed64(u64),
    /// A length-delimited payload.
    Len(&'a [u8]),
    /// Four bytes (float, fixed32): no Kubernetes field has them, so they are only skipped.
    Fixed32,
}

/// Reads fields off a message's bytes, in wire order.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over one message's bytes.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// The next field (number and value), `None` at the end of the message.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, Raw<'a>)>, Error> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|&n| n != 0)
            .ok_or(Error::Malformed("invalid field number"))?;
        let value = match key & 7 {
            0 => Raw::Varint(self.varint()?),
            1 => Raw::Fixed64(u64::from_le_bytes(self.array()?)),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| Error::Malformed("length out of range"))?;
                Raw::Len(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Raw::Fixed32
            }
            // Groups (3, 4) are proto1 leftovers no Kubernetes type uses.
            _ => return Err(Error::Malformed("unsupported wire type")),
        };
        Ok(Some((number, value)))
    }

    /// Reads a base-128 varint of at most ten bytes.
    pub(crate) fn varint(&mut self) -> Result<u64, Error> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let (&byte, rest) = self
                .buf
                .split_first()
                .ok_or(Error::Malformed("truncated varint"))?;
            self.buf = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::Malformed("varint longer than ten bytes"))
    }

    /// Whether everything has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Error> {
        if len > self.buf.len() {
            return Err(Error::Malformed("length past the end of the message"));
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }
}

impl Raw<'_> {
    /// The wire type this value was read with.
    pub(crate) fn wire_type(&self) -> WireType {
        match self {
            Raw::Varint(_) => WireType::Varint,
            Raw::Fixed64(_) => WireType::Fixed64,
            Raw::Len(_) => WireType::Len,
            Raw::Fixed32 => WireType::Fixed32,
        }
    }
}

/// Writes fields in the order they are given (ascending numbers, as Go's generated code does).
/// Public for the API server's other protobuf documents (OpenAPI v2).
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// A writer whose output starts with `prefix` (the magic number of a whole body).
    pub fn with_prefix(prefix: &[u8]) -> Self {
        Self {
            buf: prefix.to_vec(),
        }
    }

    /// What has been written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// A varint field (int32 sign-extended to 64 bits first, as Go does).
    pub fn varint_field(&mut self, number: u32, value: u64) {
        self.key(number, 0);
        put_varint(&mut self.buf, value);
    }

    /// A fixed64 field (double).
    pub fn fixed64_field(&mut self, number: u32, value: u64) {
        self.key(number, 1);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    /// A length-delimited field holding `bytes` (string, bytes).
    pub fn bytes_field(&mut self, number: u32, bytes: &[u8]) {
        self.key(number, 2);
        put_varint(&mut self.buf, bytes.len() as u64);
        self.buf.extend_from_slice(bytes);
    }

    /// A nested message written by `body`. Its length is only known afterwards, so it is put in
    /// front of the content then: one move of the content instead of sizing every message twice.
    pub fn message_field<E>(
        &mut self,
        number: u32,
        body: impl FnOnce(&mut Self) -> Result<(), E>,
    ) -> Result<(), E> {
        self.key(number, 2);
        let start = self.buf.len();
        body(self)?;
        let mut len = Vec::with_capacity(10);
        put_varint(&mut len, (self.buf.len() - start) as u64);
        self.buf.splice(start..start, len);
        Ok(())
    }

    fn key(&mut self, number: u32, wire_type: u32) {
        put_varint(&mut self.buf, u64::from(number << 3 | wire_type));
    }
}

/// Base-128 varint, least significant group first.
fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_varints_lengths_and_fixed_values() {
        // field 1 varint 300, field 2 "hi", field 3 fixed32, field 4 fixed64
        let buf = [
            0x08, 0xac, 0x02, 0x12, 2, b'h', b'i', 0x1d, 1, 0, 0, 0, 0x21, 2, 0, 0, 0, 0, 0, 0, 0,
        ];
        let mut r = Reader::new(&buf);
        assert!(matches!(
            r.next_field().unwrap(),
            Some((1, Raw::Varint(300)))
        ));
        assert!(matches!(
            r.next_field().unwrap(),
            Some((2, Raw::Len(b"hi")))
        ));
        assert!(matches!(r.next_field().unwrap(), Some((3, Raw::Fixed32))));
        assert!(matches!(
            r.next_field().unwrap(),
            Some((4, Raw::Fixed64(2)))
        ));
        assert!(r.next_field().unwrap().is_none());
    }

    #[test]
    fn writer_output_reads_back() {
        let mut w = Writer::with_prefix(b"k8s\0");
        w.varint_field(1, 300);
        w.message_field(2, |w| {
            w.bytes_field(1, &[b'x'; 200]);
            Ok::<_, Error>(())
        })
        .unwrap();
        w.fixed64_field(4, 2);
        w.varint_field(5, -1i64 as u64);
        let bytes = w.into_bytes();
        let mut r = Reader::new(bytes.strip_prefix(b"k8s\0").unwrap());
        assert!(matches!(
            r.next_field().unwrap(),
            Some((1, Raw::Varint(300)))
        ));
        let Some((2, Raw::Len(inner))) = r.next_field().unwrap() else {
            panic!("nested message");
        };
        // 200 bytes of content plus its key and two-byte length.
        assert_eq!(inner.len(), 203);
        assert!(matches!(
            r.next_field().unwrap(),
            Some((4, Raw::Fixed64(2)))
        ));
        assert!(matches!(
            r.next_field().unwrap(),
            Some((5, Raw::Varint(u64::MAX)))
        ));
        assert!(r.next_field().unwrap().is_none());
    }

    #[test]
    fn rejects_truncation_and_overlong_input() {
        for (buf, message) in [
            (&[0x08, 0x80][..], "truncated varint"),
            (&[0x12, 5, b'a'][..], "length past the end of the message"),
            (
                &[0x12, 0xff, 0xff, 0xff, 0xff, 0x0f][..],
                "length past the end of the message",
            ),
            (
                &[
                    0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                ][..],
                "varint longer than ten bytes",
            ),
            (&[0x00, 0x01][..], "invalid field number"),
            (&[0x0b][..], "unsupported wire type"),
            (&[0x0d, 1, 2][..], "length past the end of the message"),
        ] {
            let err = Reader::new(buf).next_field().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("malformed protobuf: {message}"),
                "{buf:?}"
            );
        }
    }
}
