//! Opaque identifiers. They are made by an [`crate::ports::IdSource`] (UUIDv7 in production,
//! so they sort by creation) and parsed at the edge: at most 64 characters of `[0-9A-Za-z_-]`.

use serde::{Deserialize, Serialize};

/// Longest id accepted from a client.
pub const ID_LEN_MAX: usize = 64;

/// True when `raw` has the shape of an id; anything else cannot name a row.
pub fn is_valid_id(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= ID_LEN_MAX
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String)]
        pub struct $name(String);

        impl $name {
            /// Parses a client-supplied id; `None` when it cannot be an id at all.
            pub fn parse(raw: &str) -> Option<Self> {
                is_valid_id(raw).then(|| Self(raw.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(raw: String) -> Result<Self, String> {
                if is_valid_id(&raw) {
                    Ok(Self(raw))
                } else {
                    Err(format!("not a valid id: at most {ID_LEN_MAX} characters of 0-9, A-Z, a-z, - and _"))
                }
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// Names an ingredient.
    IngredientId
);
id_type!(
    /// Names a product.
    ProductId
);
id_type!(
    /// Names a customer.
    CustomerId
);
id_type!(
    /// Names an order.
    OrderId
);
id_type!(
    /// Names one move in the stock ledger.
    MoveId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_empty_long_and_odd_characters() {
        assert!(OrderId::parse("").is_none());
        assert!(OrderId::parse(&"a".repeat(65)).is_none());
        assert!(OrderId::parse("a/b").is_none());
        assert!(OrderId::parse("019a-ok_1").is_some());
    }
}
