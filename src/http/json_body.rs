//! JSON request bodies checked against the fields they declare, so that
//! what is wrong with one is said in the product's words ("Field deviceName
//! must be a string") rather than serde's ("invalid type: null, expected
//! struct CreateBody").

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::error::ApiError;

/// A request body's type and what it takes.
pub trait JsonBody: DeserializeOwned {
    /// Every field the body takes, as sent (camelCase).
    const FIELDS: &'static [Field];
    /// What is done with any other field.
    const OTHER_FIELDS: OtherFields;
}

/// One field of a body.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
}

impl Field {
    pub const fn string(name: &'static str) -> Self {
        Self {
            name,
            kind: Kind::String,
        }
    }

    pub const fn optional_string(name: &'static str) -> Self {
        Self {
            name,
            kind: Kind::OptionalString,
        }
    }

    pub const fn optional_count(name: &'static str) -> Self {
        Self {
            name,
            kind: Kind::OptionalCount,
        }
    }

    pub const fn optional_strings(name: &'static str) -> Self {
        Self {
            name,
            kind: Kind::OptionalStrings,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Required, a string.
    String,
    /// A string, `null` or left out.
    OptionalString,
    /// A whole number from 0 to 2³²−1, `null` or left out.
    OptionalCount,
    /// An array of strings, `null` or left out.
    OptionalStrings,
}

/// What a body does with fields it does not take.
#[derive(Clone, Copy, Debug)]
pub enum OtherFields {
    /// Leaves them unread, as clients of the original API may send more.
    Ignore,
    /// Refuses them: `read_only_field` for these names (fields of the
    /// resource that cannot be changed), `unknown_field` for any other.
    Refuse { read_only: &'static [&'static str] },
}

/// Parses `body` as `T`, or says what is wrong with it.
pub fn parse<T: JsonBody>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "malformed_json",
            format!("The request body is empty. {}", shape::<T>()),
        ));
    }
    let fields = match serde_json::from_slice::<TopLevel>(body) {
        Ok(TopLevel::Object(fields)) => fields,
        Ok(TopLevel::Other(found)) => {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("{} It is {found}.", shape::<T>()),
            ))
        }
        Err(e) if e.is_data() => {
            // Only a duplicate field gets here: everything else is JSON the
            // visitor takes.
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("{}", DataError(&e)),
            ));
        }
        Err(e) => {
            return Err(ApiError::bad_request(
                "malformed_json",
                format!(
                    "The request body is not valid JSON (line {}, column {}).",
                    e.line(),
                    e.column()
                ),
            ))
        }
    };
    let mut taken = Map::new();
    for (name, value) in fields {
        match T::FIELDS.iter().find(|f| f.name == name) {
            Some(field) => {
                check(field, &value)?;
                taken.insert(name, value);
            }
            None => refuse_other::<T>(&name)?,
        }
    }
    for field in T::FIELDS {
        if field.kind == Kind::String && !taken.contains_key(field.name) {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("Field {} is missing. {}", field.name, shape::<T>()),
            ));
        }
    }
    // Every field checked, this cannot fail; if it does, say no more than the shape.
    serde_json::from_value(Value::Object(taken))
        .map_err(|_| ApiError::bad_request("invalid_request", shape::<T>()))
}

fn check(field: &Field, value: &Value) -> Result<(), ApiError> {
    let fits = match field.kind {
        Kind::String => value.is_string(),
        Kind::OptionalString => value.is_string() || value.is_null(),
        Kind::OptionalCount => {
            value.is_null() || value.as_u64().is_some_and(|n| u32::try_from(n).is_ok())
        }
        Kind::OptionalStrings => {
            value.is_null()
                || value
                    .as_array()
                    .is_some_and(|items| items.iter().all(Value::is_string))
        }
    };
    if fits {
        return Ok(());
    }
    let wanted = match field.kind {
        Kind::String => "a string",
        Kind::OptionalString => "a string or null",
        Kind::OptionalCount => "a whole number from 0 to 4294967295, or null",
        Kind::OptionalStrings => "an array of strings, or null",
    };
    Err(ApiError::bad_request(
        "invalid_request",
        format!(
            "Field {} must be {wanted}, not {}.",
            field.name,
            describe(value)
        ),
    ))
}

fn refuse_other<T: JsonBody>(name: &str) -> Result<(), ApiError> {
    let OtherFields::Refuse { read_only } = T::OTHER_FIELDS else {
        return Ok(());
    };
    let takes = takes::<T>();
    Err(
        if let Some(known) = read_only.iter().find(|n| **n == name) {
            ApiError::bad_request(
                "read_only_field",
                format!("Field {known} cannot be changed: this request takes {takes}."),
            )
        } else {
            ApiError::bad_request(
                "unknown_field",
                format!(
                    "Field {} is not known here: this request takes {takes}.",
                    quoted(name)
                ),
            )
        },
    )
}

/// A field name from the client, as a JSON string (quoted and escaped) of
/// bounded length.
fn quoted(name: &str) -> String {
    const SHOWN: usize = 60;
    let mut shown: String = name.chars().take(SHOWN).collect();
    if shown.len() < name.len() {
        shown.push('…');
    }
    Value::from(shown).to_string()
}

/// "The request body must be a JSON object with the fields email, password
/// and deviceName, and optionally deviceType."
fn shape<T: JsonBody>() -> String {
    let required: Vec<&str> = names(T::FIELDS, Kind::String);
    let optional: Vec<&str> = T::FIELDS
        .iter()
        .filter(|f| f.kind != Kind::String)
        .map(|f| f.name)
        .collect();
    let mut shape = String::from("The request body must be a JSON object");
    match (required.is_empty(), optional.is_empty()) {
        (true, true) => {}
        (false, true) => shape.push_str(&format!(" with {}", listed("field", &required))),
        (true, false) => shape.push_str(&format!(" with {}", listed("optional field", &optional))),
        (false, false) => shape.push_str(&format!(
            " with {}, and optionally {}",
            listed("field", &required),
            joined(&optional)
        )),
    }
    shape.push('.');
    shape
}

/// "only the field deviceName".
fn takes<T: JsonBody>() -> String {
    let all: Vec<&str> = T::FIELDS.iter().map(|f| f.name).collect();
    format!("only {}", listed("field", &all))
}

fn names(fields: &[Field], kind: Kind) -> Vec<&'static str> {
    fields
        .iter()
        .filter(|f| f.kind == kind)
        .map(|f| f.name)
        .collect()
}

/// "the field a", "the fields a and b", "the fields a, b and c".
fn listed(noun: &str, names: &[&str]) -> String {
    match names {
        [] => format!("no {noun}s"),
        [one] => format!("the {noun} {one}"),
        _ => format!("the {noun}s {}", joined(names)),
    }
}

/// "a", "a and b", "a, b and c".
fn joined(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A body's top level: an object's fields in order, or what it is instead.
enum TopLevel {
    Object(Vec<(String, Value)>),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for TopLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TopLevelVisitor)
    }
}

struct TopLevelVisitor;

impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
        let mut fields: Vec<(String, Value)> = Vec::new();
        let mut seen = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !seen.insert(name.clone()) {
                return Err(de::Error::custom(Duplicate(name)));
            }
            let value = map.next_value::<Value>()?;
            fields.push((name, value));
        }
        Ok(TopLevel::Object(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TopLevel, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(TopLevel::Other("an array"))
    }

    fn visit_unit<E>(self) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("null"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("true or false"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("a number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("a number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("a number"))
    }

    fn visit_str<E>(self, _: &str) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("a string"))
    }
}

/// The one data error [`TopLevelVisitor`] raises.
struct Duplicate(String);

impl fmt::Display for Duplicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Field {} appears more than once.", quoted(&self.0))
    }
}

/// serde_json's message for a [`Duplicate`], without its position suffix.
struct DataError<'a>(&'a serde_json::Error);

impl fmt::Display for DataError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        let suffix = format!(" at line {} column {}", self.0.line(), self.0.column());
        f.write_str(text.strip_suffix(&suffix).unwrap_or(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Create {
        email: String,
        device_name: String,
        device_type: Option<String>,
    }

    impl JsonBody for Create {
        const FIELDS: &'static [Field] = &[
            Field::string("email"),
            Field::string("deviceName"),
            Field::optional_string("deviceType"),
        ];
        const OTHER_FIELDS: OtherFields = OtherFields::Ignore;
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Rename {
        device_name: String,
    }

    impl JsonBody for Rename {
        const FIELDS: &'static [Field] = &[Field::string("deviceName")];
        const OTHER_FIELDS: OtherFields = OtherFields::Refuse {
            read_only: &["_id", "createdAt"],
        };
    }

    fn refusal<T: JsonBody + fmt::Debug>(body: &str) -> (String, String) {
        let e = parse::<T>(body.as_bytes()).unwrap_err();
        (e.code().to_owned(), e.message().to_owned())
    }

    #[test]
    fn good_bodies_parse() {
        let create: Create =
            parse(br#"{"email":"a@b.c","deviceName":"d","deviceType":null,"other":[1]}"#).unwrap();
        assert_eq!(create.device_type, None);
        let create: Create = parse(br#" {"deviceName":"d","email":"a@b.c"} "#).unwrap();
        assert_eq!(create.device_name, "d");
        let rename: Rename = parse(br#"{"deviceName":"new"}"#).unwrap();
        assert_eq!(rename.device_name, "new");
    }

    #[test]
    fn refusals_are_in_the_products_words() {
        let shape = "The request body must be a JSON object with the fields email and deviceName, and optionally deviceType.";
        for (body, code, message) in [
            (
                "",
                "malformed_json",
                format!("The request body is empty. {shape}"),
            ),
            (
                "{",
                "malformed_json",
                "The request body is not valid JSON (line 1, column 1).".into(),
            ),
            ("null", "invalid_request", format!("{shape} It is null.")),
            (
                "[1, 2]",
                "invalid_request",
                format!("{shape} It is an array."),
            ),
            (
                r#""text""#,
                "invalid_request",
                format!("{shape} It is a string."),
            ),
            (
                "{}",
                "invalid_request",
                format!("Field email is missing. {shape}"),
            ),
            (
                r#"{"email":"a@b.c","deviceName":null}"#,
                "invalid_request",
                "Field deviceName must be a string, not null.".into(),
            ),
            (
                r#"{"email":5,"deviceName":"d"}"#,
                "invalid_request",
                "Field email must be a string, not a number.".into(),
            ),
            (
                r#"{"email":"a@b.c","deviceName":"d","deviceType":{}}"#,
                "invalid_request",
                "Field deviceType must be a string or null, not an object.".into(),
            ),
            (
                r#"{"email":"a@b.c","deviceName":"d","email":"x@y.z"}"#,
                "invalid_request",
                r#"Field "email" appears more than once."#.into(),
            ),
        ] {
            assert_eq!(
                refusal::<Create>(body),
                (code.to_owned(), message),
                "{body}"
            );
        }
    }

    #[test]
    fn strict_bodies_name_the_field_they_refuse() {
        assert_eq!(
            refusal::<Rename>(r#"{"deviceName":"d","createdAt":"2026-01-01T00:00:00Z"}"#),
            (
                "read_only_field".to_owned(),
                "Field createdAt cannot be changed: this request takes only the field deviceName."
                    .to_owned()
            )
        );
        assert_eq!(
            refusal::<Rename>(r#"{"deviceName":"d","colour\n":"red"}"#),
            (
                "unknown_field".to_owned(),
                r#"Field "colour\n" is not known here: this request takes only the field deviceName."#.to_owned()
            )
        );
        let long = "x".repeat(1000);
        let (code, message) = refusal::<Rename>(&format!(r#"{{"deviceName":"d","{long}":1}}"#));
        assert_eq!(code, "unknown_field");
        assert!(message.len() < 200, "{message}");
        assert_eq!(
            refusal::<Rename>("[]").1,
            "The request body must be a JSON object with the field deviceName. It is an array."
        );
    }
}
