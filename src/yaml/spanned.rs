//! `Spanned<T>`: a deserialized value together with the span it was read from.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::ops::Deref;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use crate::diag::{Pos, Span};

pub(super) const SPANNED_NAME: &str = "$formwork::Spanned";
pub(super) const SPANNED_FIELDS: &[&str] = &[
    "$start_line",
    "$start_col",
    "$end_line",
    "$end_col",
    "$value",
];

/// A value and where it was written. Compares, hashes and orders by value only, so that a
/// `Spanned<String>` works as a map key looked up by `&str`.
#[derive(Clone, Debug, Default)]
pub struct Spanned<T> {
    pub span: Span,
    pub value: T,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Spanned<T> {
        Spanned { span, value }
    }
}

impl<T> Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Spanned<T> {}

impl<T: Hash> Hash for Spanned<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

impl<T: PartialOrd> PartialOrd for Spanned<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.value.partial_cmp(&other.value)
    }
}

impl<T: Ord> Ord for Spanned<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

impl Borrow<str> for Spanned<String> {
    fn borrow(&self) -> &str {
        &self.value
    }
}

impl<T: fmt::Display> fmt::Display for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Spanned<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value with its position")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Spanned<T>, A::Error> {
                let mut n = [0u32; 4];
                for slot in &mut n {
                    if map.next_key::<de::IgnoredAny>()?.is_none() {
                        return Err(de::Error::custom("position fields missing"));
                    }
                    *slot = map.next_value()?;
                }
                if map.next_key::<de::IgnoredAny>()?.is_none() {
                    return Err(de::Error::custom("value missing"));
                }
                let value = map.next_value()?;
                Ok(Spanned {
                    span: Span {
                        start: Pos {
                            line: n[0],
                            col: n[1],
                        },
                        end: Pos {
                            line: n[2],
                            col: n[3],
                        },
                    },
                    value,
                })
            }
        }
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, V(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}
