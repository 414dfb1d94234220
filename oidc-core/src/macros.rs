//! Trait impls shared by the string newtypes.

/// Implements `Display`, `AsRef<str>`, `FromStr`, `TryFrom<&str>`, `TryFrom<String>`,
/// `From<T> for String`, comparison with `str`, and serde as a string (deserializing
/// through `parse`, so a stored or received value is validated again) for a type with
/// `fn parse(&str) -> Result<Self, InvalidValue>` and `fn as_str(&self) -> &str`.
macro_rules! string_newtype_impls {
    ($name:ident) => {
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::error::InvalidValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = $crate::error::InvalidValue;

            fn try_from(s: &str) -> Result<Self, Self::Error> {
                $name::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::error::InvalidValue;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                $name::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.as_str().to_owned()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize<'de>>::deserialize(
                    deserializer,
                )?;
                $name::parse(&s).map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    };
}
