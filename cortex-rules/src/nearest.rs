//! The nearest known name to a mistyped one.

/// The known name nearest to `name` (by edit distance, ignoring case),
/// if it is near enough to be a typo of it.
///
/// ```
/// use cortex_rules::config::nearest;
/// assert_eq!(nearest("failure_rat", ["failure_rate", "open_for"]), Some("failure_rate"));
/// assert_eq!(nearest("paymnets", ["payments", "inventory"]), Some("payments"));
/// assert_eq!(nearest("zzz", ["payments"]), None);
/// ```
pub fn nearest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    let limit = (name.chars().count() / 3).max(2);
    known
        .into_iter()
        .map(|k| (edit_distance(&name, &k.to_ascii_lowercase()), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Damerau-Levenshtein distance with adjacent transpositions (a swapped
/// pair of letters is one typo).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_swapped_pair_is_one_typo() {
        assert_eq!(super::edit_distance("ab", "ba"), 1);
        assert_eq!(super::edit_distance("kitten", "sitting"), 3);
    }
}
