//! A row's shape, checked without building it.

use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, SeqAccess, Visitor};

use crate::store::ColumnKind;

/// Checks a row against its columns' kinds without building it: an array of
/// exactly as many cells, each null or of its column's kind.
pub(super) struct RowSeed<'a>(pub(super) &'a [ColumnKind]);

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an array of {} cells", self.0.len())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        for (i, kind) in self.0.iter().enumerate() {
            if seq.next_element_seed(CellSeed(*kind))?.is_none() {
                return Err(serde::de::Error::invalid_length(i, &self));
            }
        }
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(serde::de::Error::invalid_length(self.0.len() + 1, &self));
        }
        Ok(())
    }
}

struct CellSeed(ColumnKind);

impl<'de> DeserializeSeed<'de> for CellSeed {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CellSeed {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.0 {
            ColumnKind::Integer => f.write_str("a 64-bit integer or null"),
            ColumnKind::Text => f.write_str("a string or null"),
            ColumnKind::Bytes => f.write_str("a string of hex digits or null"),
        }
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        match self.0 {
            ColumnKind::Integer => Ok(()),
            _ => Err(E::invalid_type(
                serde::de::Unexpected::Other("a number"),
                &self,
            )),
        }
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        match self.0 {
            ColumnKind::Integer if i64::try_from(v).is_ok() => Ok(()),
            _ => Err(E::invalid_type(serde::de::Unexpected::Unsigned(v), &self)),
        }
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        match self.0 {
            ColumnKind::Text => Ok(()),
            ColumnKind::Bytes if v.len() % 2 == 0 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(())
            }
            _ => Err(E::invalid_type(serde::de::Unexpected::Str(v), &self)),
        }
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<(), E> {
        self.visit_str(&v)
    }
}
