//! The `\n\nHuman: …\n\nAssistant: …` transcript format (Anthropic's HH-RLHF data), read
//! alike by every study that takes such conversations.

use shammie_core::Role;

/// The turns of an HH-RLHF transcript (`\n\nHuman: …\n\nAssistant: …`), trimmed; `None`
/// when it does not start with `Human:`.
pub fn hh_turns(t: &str) -> Option<Vec<(Role, String)>> {
    const H: &str = "\n\nHuman:";
    const A: &str = "\n\nAssistant:";
    let t = format!("\n\n{}", t.trim_start());
    if !t.starts_with(H) {
        return None;
    }
    let mut out = Vec::new();
    let mut rest = t.as_str();
    loop {
        let (role, len) = if rest.starts_with(H) {
            (Role::User, H.len())
        } else {
            (Role::Assistant, A.len())
        };
        rest = &rest[len..];
        let next = [rest.find(H), rest.find(A)].into_iter().flatten().min();
        match next {
            Some(i) => {
                out.push((role, rest[..i].trim().to_string()));
                rest = &rest[i..];
            }
            None => {
                out.push((role, rest.trim().to_string()));
                return Some(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hh_transcripts_split_into_turns() {
        let t = hh_turns("\n\nHuman: hi\n\nAssistant: hello\n\nHuman: more?\n\nAssistant: yes")
            .unwrap();
        assert_eq!(
            t,
            [
                (Role::User, "hi".to_string()),
                (Role::Assistant, "hello".into()),
                (Role::User, "more?".into()),
                (Role::Assistant, "yes".into())
            ]
        );
        assert_eq!(hh_turns("Assistant: x"), None);
    }
}
