//! DynamoDB attribute values, both ways: the values of a record's fields and an item's key
//! written as attributes, and attributes read back from an item with errors that name the item.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::store::{Millis, StoreError};

/// An item: its attributes by name.
pub(super) type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub(super) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A string attribute, or null.
pub(super) fn opt_s(v: Option<&str>) -> AttributeValue {
    v.map_or(AttributeValue::Null(true), s)
}

/// A number attribute, or null.
pub(super) fn opt_n(v: Option<i64>) -> AttributeValue {
    v.map_or(AttributeValue::Null(true), n)
}

/// The key of an item (partition key `pk`, sort key `sk`), as an item to extend with the other
/// attributes.
pub(super) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// A time in a sort key: zero-padded so that keys sort by time.
pub(super) fn time_key(ms: Millis) -> String {
    format!("{:020}", ms.max(0))
}

/// Reads attributes of one item, naming the item in errors.
pub(super) struct Fields<'a> {
    item: &'a Item,
}

/// The attributes of `item`, to read.
pub(super) fn fields(item: &Item) -> Fields<'_> {
    Fields { item }
}

impl Fields<'_> {
    fn missing(&self, name: &str, wanted: &str) -> StoreError {
        let part = |k: &str| {
            self.item
                .get(k)
                .and_then(|v| v.as_s().ok())
                .map_or("?", String::as_str)
                .to_string()
        };
        StoreError::Data(format!(
            "item {}/{} has no {wanted} attribute `{name}`",
            part("pk"),
            part("sk")
        ))
    }

    pub(super) fn str(&self, name: &str) -> Result<String, StoreError> {
        self.opt_str(name)?
            .ok_or_else(|| self.missing(name, "string"))
    }

    pub(super) fn opt_str(&self, name: &str) -> Result<Option<String>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
            Some(_) => Err(self.missing(name, "string")),
        }
    }

    pub(super) fn num(&self, name: &str) -> Result<i64, StoreError> {
        self.opt_num(name)?
            .ok_or_else(|| self.missing(name, "number"))
    }

    pub(super) fn opt_num(&self, name: &str) -> Result<Option<i64>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => v
                .parse()
                .map(Some)
                .map_err(|_| self.missing(name, "integer")),
            Some(_) => Err(self.missing(name, "number")),
        }
    }

    pub(super) fn bool(&self, name: &str) -> Result<bool, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::Bool(v)) => Ok(*v),
            _ => Err(self.missing(name, "boolean")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_keys_sort_by_time() {
        assert!(time_key(999) < time_key(1000));
        assert!(time_key(1_700_000_000_000) < time_key(17_000_000_000_000));
        assert_eq!(time_key(-5), time_key(0));
    }
}
