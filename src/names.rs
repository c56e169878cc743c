//! The names of kyso's enums, written once.
//!
//! A verdict, an indication, a revocation mode or a policy has one name, the one in the JSON
//! report, the audit record, the configuration and the command line. `names!` gives an
//! enum that name from a single table: `name()`, `Display`, `FromStr` (what clap and the
//! configuration parse), serde both ways, and its OpenAPI schema (a string, one of the
//! names). Nothing else spells a variant's name.

/// A name that is not one of an enum's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?}: {}", expected.join(", "))]
pub struct UnknownName {
    /// What was being named ("revocation mode", "policy", …).
    pub what: &'static str,
    /// The text given.
    pub given: String,
    /// Every name that would have been accepted.
    pub expected: &'static [&'static str],
}

/// An enum whose variants have one name each (`names!`).
pub trait Named: Sized + Copy + 'static {
    /// What the enum names, for messages ("revocation mode").
    const WHAT: &'static str;
    /// Every variant, in declaration order.
    const ALL: &'static [Self];
    /// Every variant's name, in the order of [`Named::ALL`].
    const NAMES: &'static [&'static str];

    /// The variant's name.
    fn name(self) -> &'static str;

    /// The variant called `text`.
    fn from_name(text: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.name() == text)
            .ok_or_else(|| UnknownName {
                what: Self::WHAT,
                given: text.to_owned(),
                expected: Self::NAMES,
            })
    }
}

/// Gives `$ty` its names: `names!(Mode, "revocation mode", { Offline = "offline", … })`;
/// `names!(Verdict as "ChangeVerdict", …)` names its OpenAPI schema when the type's own name
/// is another enum's too.
macro_rules! names {
    ($ty:ident as $schema:literal, $what:literal, { $($variant:ident = $name:literal),+ $(,)? }) => {
        $crate::names::names!(@impl $ty, $schema, $what, { $($variant = $name),+ });
    };
    ($ty:ident, $what:literal, { $($variant:ident = $name:literal),+ $(,)? }) => {
        $crate::names::names!(@impl $ty, stringify!($ty), $what, { $($variant = $name),+ });
    };
    (@impl $ty:ident, $schema:expr, $what:literal, { $($variant:ident = $name:literal),+ }) => {
        impl $crate::names::Named for $ty {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &[$($ty::$variant),+];
            const NAMES: &'static [&'static str] = &[$($name),+];
            fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl $ty {
            /// The variant's name, as the JSON report, the configuration and the command
            /// line write it.
            #[allow(dead_code)]
            pub fn name(self) -> &'static str {
                $crate::names::Named::name(self)
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::names::Named::name(*self))
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::names::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$ty as $crate::names::Named>::from_name(s)
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($crate::names::Named::name(*self))
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                <$ty as $crate::names::Named>::from_name(&text).map_err(serde::de::Error::custom)
            }
        }

        // The OpenAPI schema: a string, one of the names.
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some($what))
                    .enum_values(Some([$($name),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $ty {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($schema)
            }
        }
    };
}

pub(crate) use names;

#[cfg(test)]
mod tests {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Colour {
        Red,
        DeepBlue,
    }

    names!(Colour, "colour", { Red = "red", DeepBlue = "deep-blue" });

    #[test]
    fn one_table_names_every_way() {
        assert_eq!(Colour::DeepBlue.to_string(), "deep-blue");
        assert_eq!("red".parse::<Colour>(), Ok(Colour::Red));
        assert_eq!(
            serde_json::to_string(&Colour::DeepBlue).expect("serialises"),
            "\"deep-blue\""
        );
        assert_eq!(
            serde_json::from_str::<Colour>("\"deep-blue\"").expect("deserialises"),
            Colour::DeepBlue
        );
        let e = "green".parse::<Colour>().expect_err("not a colour");
        assert_eq!(e.to_string(), "unknown colour \"green\": red, deep-blue");
        let e = serde_json::from_str::<Colour>("\"Red\"").expect_err("names are exact");
        assert!(e.to_string().contains("unknown colour \"Red\""), "{e}");
        let schema =
            serde_json::to_value(<Colour as utoipa::PartialSchema>::schema()).expect("serialises");
        assert_eq!(schema["enum"], serde_json::json!(["red", "deep-blue"]));
        assert_eq!(schema["type"], "string");
    }
}
