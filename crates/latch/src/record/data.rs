//! [`Data`]: a session's key/value map, kept as one sorted vector.
//!
//! Written here rather than taken from a crate: what a session needs is a
//! map of a few string keys that serializes as a JSON object with its keys in
//! order (the bytes a cookie signs or seals, and a store writes, must not
//! depend on insertion order), and that costs little to hold, copy and
//! decode. `std`'s `BTreeMap` orders its keys but allocates a whole node of
//! eleven entries (about 630 bytes) for the first key, which was most of
//! what a stored session cost in memory; a hash map does not order them.
//! A vector sorted by key does both with one allocation the size of its
//! entries.

use std::fmt;
use std::ops::Index;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Up to this many entries, an insertion makes room for exactly one more.
const EXACT_UP_TO: usize = 4;

/// The data of one session, a map from string keys to JSON values, in key
/// order.
///
/// It has the methods of a map (`get`, `insert`, `remove`, `iter`, ...) and
/// serializes as a JSON object with its keys sorted, as `BTreeMap` does.
/// Lookups are a binary search; an insertion moves the entries after it, which
/// for the handful of keys a session holds costs less than a tree's node.
///
/// Values are plain serde data: nothing in a session can rebuild code or
/// arbitrary objects when read back.
///
/// # Example
/// ```
/// use latch::Data;
/// use serde_json::json;
///
/// let mut data = Data::new();
/// data.insert("theme".into(), json!("dark"));
/// data.insert("cart".into(), json!([1, 2]));
/// assert_eq!(data["theme"], "dark");
/// assert_eq!(data.keys().collect::<Vec<_>>(), ["cart", "theme"]);
/// assert_eq!(serde_json::to_string(&data)?, r#"{"cart":[1,2],"theme":"dark"}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Data {
    /// Sorted by key, each key once.
    entries: Vec<(String, Value)>,
}

impl Data {
    /// An empty map; allocates nothing until the first insertion.
    ///
    /// # Example
    /// ```
    /// assert!(latch::Data::new().is_empty());
    /// ```
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// How many keys the map holds.
    ///
    /// # Example
    /// ```
    /// let mut data = latch::Data::new();
    /// data.insert("a".into(), 1.into());
    /// assert_eq!(data.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map holds no key.
    ///
    /// # Example
    /// ```
    /// assert!(latch::Data::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where `key` is, or where it would go.
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The value under `key`.
    ///
    /// # Example
    /// ```
    /// let mut data = latch::Data::new();
    /// data.insert("a".into(), 1.into());
    /// assert_eq!(data.get("a"), Some(&1.into()));
    /// assert_eq!(data.get("b"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    /// The value under `key`, to change in place.
    ///
    /// # Example
    /// ```
    /// let mut data = latch::Data::new();
    /// data.insert("n".into(), 1.into());
    /// *data.get_mut("n").unwrap() = 2.into();
    /// assert_eq!(data["n"], 2);
    /// ```
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.find(key).ok().map(|i| &mut self.entries[i].1)
    }

    /// Whether the map holds `key`.
    ///
    /// # Example
    /// ```
    /// let mut data = latch::Data::new();
    /// data.insert("a".into(), 1.into());
    /// assert!(data.contains_key("a"));
    /// assert!(!data.contains_key("b"));
    /// ```
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Put `value` under `key`; the value it replaces, if any.
    ///
    /// # Example
    /// ```
    /// let mut data = latch::Data::new();
    /// assert_eq!(data.insert("a".into(), 1.into()), None);
    /// assert_eq!(data.insert("a".into(), 2.into()), Some(1.into()));
    /// ```
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        // Keys most often come in order (a decoded record, a map being
        // built): append without a search.
        let at = if self.entries.last().is_none_or(|(last, _)| *last < key) {
            self.entries.len()
        } else {
            match self.find(&key) {
                Ok(i) => return Some(std::mem::replace(&mut self.entries[i].1, value)),
                Err(i) => i,
            }
        };
        // A vector's first growth makes room for four entries; most sessions
        // hold one or two keys, and a store may keep them for their whole
        // life, so a small map grows one entry at a time.
        if self.entries.len() == self.entries.capacity() && self.entries.len() < EXACT_UP_TO {
            self.entries.reserve_exact(1);
        }
        self.entries.insert(at, (key, value));
        None
    }

    /// Take the value under `key` out of the map.
    ///
    /// # Example
    /// ```
    /// let mut data = latch::Data::new();
    /// data.insert("a".into(), 1.into());
    /// assert_eq!(data.remove("a"), Some(1.into()));
    /// assert_eq!(data.remove("a"), None);
    /// ```
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.find(key).ok().map(|i| self.entries.remove(i).1)
    }

    /// Remove every key.
    ///
    /// # Example
    /// ```
    /// let mut data = latch::Data::new();
    /// data.insert("a".into(), 1.into());
    /// data.clear();
    /// assert!(data.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Give back the room kept for entries not yet inserted (a map grows
    /// by doubling, so one that had a key inserted holds room for four).
    /// latch calls it when it hands a record to a store that keeps it as it
    /// is, such as [`MemoryStore`](crate::MemoryStore).
    ///
    /// # Example
    /// ```
    /// let mut data = latch::Data::new();
    /// data.insert("a".into(), 1.into());
    /// data.shrink_to_fit();
    /// assert_eq!(data.len(), 1);
    /// ```
    pub fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
    }

    /// How many entries the map has room for without growing.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// Keep only the entries for which `keep` says yes.
    ///
    /// # Example
    /// ```
    /// let mut data = latch::Data::new();
    /// data.insert("a".into(), 1.into());
    /// data.insert("b".into(), 2.into());
    /// data.retain(|key, _| key != "a");
    /// assert_eq!(data.keys().collect::<Vec<_>>(), ["b"]);
    /// ```
    pub fn retain(&mut self, mut keep: impl FnMut(&String, &mut Value) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }

    /// The entries in key order.
    ///
    /// # Example
    /// ```
    /// let mut data = latch::Data::new();
    /// data.insert("b".into(), 2.into());
    /// data.insert("a".into(), 1.into());
    /// let keys: Vec<&String> = data.iter().map(|(k, _)| k).collect();
    /// assert_eq!(keys, ["a", "b"]);
    /// ```
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.entries.iter())
    }

    /// The keys in order.
    ///
    /// # Example
    /// ```
    /// let mut data = latch::Data::new();
    /// data.insert("b".into(), 2.into());
    /// data.insert("a".into(), 1.into());
    /// assert_eq!(data.keys().collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values in key order.
    ///
    /// # Example
    /// ```
    /// let mut data = latch::Data::new();
    /// data.insert("b".into(), 2.into());
    /// data.insert("a".into(), 1.into());
    /// assert_eq!(data.values().collect::<Vec<_>>(), [&1, &2]);
    /// ```
    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// A map of `entries` given in any order; of a key given twice, the
    /// last value stays (as when they are inserted one by one).
    fn from_unsorted(mut entries: Vec<(String, Value)>) -> Self {
        // Stable: equal keys stay in the order given, so keeping the last
        // of each run keeps the last one given.
        entries.sort_by(|(a, _), (b, _)| a.cmp(b));
        let mut sorted: Vec<(String, Value)> = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            match sorted.last_mut() {
                Some(last) if last.0 == key => last.1 = value,
                _ => sorted.push((key, value)),
            }
        }
        Self { entries: sorted }
    }
}

/// The entries of a [`Data`] in key order, borrowed.
#[derive(Debug, Clone)]
pub struct Iter<'a>(std::slice::Iter<'a, (String, Value)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a String, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl<'a> IntoIterator for &'a Data {
    type Item = (&'a String, &'a Value);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl IntoIterator for Data {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;

    /// The entries in key order.
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl FromIterator<(String, Value)> for Data {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Self::from_unsorted(iter.into_iter().collect())
    }
}

impl Extend<(String, Value)> for Data {
    /// As inserting each in turn (a key given again takes the later value),
    /// with one sort instead of a shift per key.
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, iter: I) {
        let mut entries = std::mem::take(&mut self.entries);
        entries.extend(iter);
        *self = Self::from_unsorted(entries);
    }
}

impl From<std::collections::BTreeMap<String, Value>> for Data {
    /// The same map (already in key order: no sorting).
    fn from(map: std::collections::BTreeMap<String, Value>) -> Self {
        Self {
            entries: map.into_iter().collect(),
        }
    }
}

impl Index<&str> for Data {
    type Output = Value;

    /// The value under `key`.
    ///
    /// # Panics
    /// When the map does not hold `key`, as a standard map's index does; use
    /// [`Data::get`] for a key that may be absent.
    fn index(&self, key: &str) -> &Value {
        // OK because indexing a missing key is the caller's bug, and a
        // standard map panics the same way.
        self.get(key).expect("no such key in the session data")
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Data {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (key, value) in &self.entries {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(DataVisitor)
    }
}

struct DataVisitor;

impl<'de> Visitor<'de> for DataVisitor {
    type Value = Data;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of string keys to values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Data, A::Error> {
        // Never trust a size hint for more than a little room up front.
        let mut entries: Vec<(String, Value)> =
            Vec::with_capacity(access.size_hint().unwrap_or(0).min(16));
        let mut sorted = true;
        while let Some((key, value)) = access.next_entry::<String, Value>()? {
            if let Some((last, _)) = entries.last() {
                sorted &= *last < key;
            }
            entries.push((key, value));
        }
        // What latch wrote comes back in order, each key once; anything
        // else (another writer's JSON, repeated keys) is sorted once rather
        // than inserted key by key, which would be quadratic.
        Ok(if sorted {
            Data { entries }
        } else {
            Data::from_unsorted(entries)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn serializes_in_key_order_whatever_the_insertion_order() {
        let mut data = Data::new();
        for key in ["b", "a", "c", "_latch.sid"] {
            data.insert(key.into(), json!(key));
        }
        assert_eq!(
            serde_json::to_string(&data).unwrap(),
            r#"{"_latch.sid":"_latch.sid","a":"a","b":"b","c":"c"}"#
        );
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_as_a_standard_map_does() {
        let text = r#"{"b":1,"a":2,"b":3}"#;
        let ours: Data = serde_json::from_str(text).unwrap();
        let std: BTreeMap<String, Value> = serde_json::from_str(text).unwrap();
        assert_eq!(ours, Data::from(std));
        assert_eq!(ours["b"], 3);
        assert_eq!(ours.len(), 2);
    }

    #[test]
    fn a_small_map_keeps_no_spare_room() {
        let mut data = Data::new();
        for (n, key) in ["b", "a", "c", "d"].into_iter().enumerate() {
            data.insert(key.into(), json!(n));
            assert_eq!(data.capacity(), n + 1, "after {key}");
        }
        // Past that, amortized growth.
        data.insert("e".into(), json!(4));
        assert!(data.capacity() >= 5);
    }

    #[test]
    fn refuses_what_is_not_a_map() {
        assert!(serde_json::from_str::<Data>("[1,2]").is_err());
        assert!(serde_json::from_str::<Data>(r#"{"a":1"#).is_err());
    }

    #[test]
    fn many_unsorted_and_repeated_keys_decode_sorted_and_once_each() {
        // Reverse order, every key twice: the worst case for inserting one by
        // one. Correct and quick (a quadratic decode would take seconds).
        let n = 50_000;
        let mut text = String::from("{");
        for i in (0..n).rev().chain((0..n).rev()) {
            text.push_str(&format!("\"k{i:06}\":{i},"));
        }
        text.pop();
        text.push('}');
        let data: Data = serde_json::from_str(&text).unwrap();
        assert_eq!(data.len(), n);
        assert!(data.keys().zip(data.keys().skip(1)).all(|(a, b)| a < b));
    }

    #[derive(Debug, Clone)]
    enum Step {
        Insert(String, i64),
        Remove(String),
        Retain(u8),
        Clear,
    }

    fn step() -> impl Strategy<Value = Step> {
        let key = "[a-e_]{0,3}";
        prop_oneof![
            6 => (key, any::<i64>()).prop_map(|(k, v)| Step::Insert(k, v)),
            2 => key.prop_map(Step::Remove),
            1 => any::<u8>().prop_map(Step::Retain),
            1 => Just(Step::Clear),
        ]
    }

    proptest! {
        /// Every operation agrees with a standard `BTreeMap`, and the JSON
        /// is byte for byte what the standard map writes (what cookies and
        /// stores hold), and reads back to the same map.
        #[test]
        fn behaves_as_a_standard_map(steps in proptest::collection::vec(step(), 0..40)) {
            let mut ours = Data::new();
            let mut std = BTreeMap::<String, Value>::new();
            for step in steps {
                match step {
                    Step::Insert(k, v) => {
                        prop_assert_eq!(ours.insert(k.clone(), v.into()), std.insert(k, v.into()));
                    }
                    Step::Remove(k) => prop_assert_eq!(ours.remove(&k), std.remove(&k)),
                    Step::Retain(bits) => {
                        let keep = |k: &String| k.len() % 2 == usize::from(bits % 2);
                        ours.retain(|k, _| keep(k));
                        std.retain(|k, _| keep(k));
                    }
                    Step::Clear => {
                        ours.clear();
                        std.clear();
                    }
                }
                prop_assert_eq!(ours.len(), std.len());
                prop_assert!(ours.iter().eq(std.iter()));
            }
            for key in ["", "a", "b_", "zz"] {
                prop_assert_eq!(ours.get(key), std.get(key));
                prop_assert_eq!(ours.contains_key(key), std.contains_key(key));
            }
            let text = serde_json::to_string(&ours).unwrap();
            prop_assert_eq!(&text, &serde_json::to_string(&std).unwrap());
            prop_assert_eq!(serde_json::from_str::<Data>(&text).unwrap(), ours.clone());
            let collected: Data = std.clone().into_iter().rev().collect();
            prop_assert_eq!(&collected, &ours);
            // Extending agrees with inserting each in turn, repeated keys too.
            let more = [("b_", 7), ("a", 8), ("b_", 9)].map(|(k, v)| (k.to_owned(), Value::from(v)));
            let mut extended = ours.clone();
            extended.extend(more.clone());
            for (k, v) in more {
                ours.insert(k.clone(), v.clone());
                std.insert(k, v);
            }
            prop_assert_eq!(&extended, &ours);
            prop_assert!(extended.iter().eq(std.iter()));
        }
    }
}
