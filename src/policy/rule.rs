//! Named policies and which of their rules governs each action.
//!
//! A policy declares up to six rules. For an action, the most specific
//! declared rule wins: `allowRead` / `allowInsert` / `allowUpdate` /
//! `allowDelete`, else `allowWrite` (insert, update, delete), else `allow`.
//!
//! ```
//! use pylon_workers::policy::{Action, Policy, Rule};
//! let p = Policy::new("own", "Todo", vec![
//!     (Rule::Allow, "auth.userId != null".parse().unwrap()),
//!     (Rule::AllowWrite, "data.ownerId == auth.userId".parse().unwrap()),
//! ]);
//! assert_eq!(p.rule_for(Action::Read).unwrap().0, Rule::Allow);
//! assert_eq!(p.rule_for(Action::Delete).unwrap().0, Rule::AllowWrite);
//! ```

use std::fmt;

use super::ast::Expr;

/// What a caller wants to do to a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Read,
    Insert,
    Update,
    Delete,
}

impl Action {
    pub const ALL: [Action; 4] = [Action::Read, Action::Insert, Action::Update, Action::Delete];

    pub fn name(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Insert => "insert",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }

    /// The rule naming exactly this action.
    pub fn specific_rule(self) -> Rule {
        match self {
            Action::Read => Rule::AllowRead,
            Action::Insert => Rule::AllowInsert,
            Action::Update => Rule::AllowUpdate,
            Action::Delete => Rule::AllowDelete,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rule key of a policy, as spelled in the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    AllowRead,
    AllowInsert,
    AllowUpdate,
    AllowDelete,
    AllowWrite,
    Allow,
}

impl Rule {
    pub const ALL: [Rule; 6] = [
        Rule::AllowRead,
        Rule::AllowInsert,
        Rule::AllowUpdate,
        Rule::AllowDelete,
        Rule::AllowWrite,
        Rule::Allow,
    ];

    /// The manifest key: `allowRead`, ..., `allow`.
    pub fn key(self) -> &'static str {
        match self {
            Rule::AllowRead => "allowRead",
            Rule::AllowInsert => "allowInsert",
            Rule::AllowUpdate => "allowUpdate",
            Rule::AllowDelete => "allowDelete",
            Rule::AllowWrite => "allowWrite",
            Rule::Allow => "allow",
        }
    }

    pub fn from_key(key: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.key() == key)
    }

    /// Whether this rule may govern `action` (if no more specific rule is declared).
    pub fn covers(self, action: Action) -> bool {
        match self {
            Rule::Allow => true,
            Rule::AllowWrite => action != Action::Read,
            specific => specific == action.specific_rule(),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// One named policy of one entity, its expressions parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub name: String,
    pub entity: String,
    rules: Vec<(Rule, Expr)>,
    /// Per action (in [`Action::ALL`] order), the index in `rules` that governs it.
    governing: [Option<u8>; 4],
}

impl Policy {
    /// A policy from its declared rules. A rule key given twice keeps the last.
    pub fn new(
        name: impl Into<String>,
        entity: impl Into<String>,
        rules: Vec<(Rule, Expr)>,
    ) -> Self {
        let mut rules = rules;
        let mut seen = Vec::new();
        rules.reverse();
        rules.retain(|(r, _)| {
            if seen.contains(r) {
                false
            } else {
                seen.push(*r);
                true
            }
        });
        rules.reverse();
        let find = |r: Rule| rules.iter().position(|(x, _)| *x == r).map(|i| i as u8);
        let governing = Action::ALL.map(|a| {
            find(a.specific_rule())
                .or_else(|| {
                    if a == Action::Read {
                        None
                    } else {
                        find(Rule::AllowWrite)
                    }
                })
                .or_else(|| find(Rule::Allow))
        });
        Policy {
            name: name.into(),
            entity: entity.into(),
            rules,
            governing,
        }
    }

    /// The declared rules, in declaration order.
    pub fn rules(&self) -> &[(Rule, Expr)] {
        &self.rules
    }

    /// The rule that governs `action` in this policy, if any.
    pub fn rule_for(&self, action: Action) -> Option<&(Rule, Expr)> {
        let i = self.governing[action as usize]?;
        Some(&self.rules[i as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pol(rules: &[Rule]) -> Policy {
        Policy::new(
            "p",
            "E",
            rules.iter().map(|r| (*r, Expr::Bool(true))).collect(),
        )
    }

    fn governing(p: &Policy) -> Vec<Option<Rule>> {
        Action::ALL
            .iter()
            .map(|a| p.rule_for(*a).map(|r| r.0))
            .collect()
    }

    #[test]
    fn most_specific_wins() {
        use Rule::*;
        assert_eq!(governing(&pol(&[Allow])), vec![Some(Allow); 4]);
        assert_eq!(
            governing(&pol(&[Allow, AllowWrite, AllowDelete])),
            vec![
                Some(Allow),
                Some(AllowWrite),
                Some(AllowWrite),
                Some(AllowDelete)
            ]
        );
        assert_eq!(
            governing(&pol(&[AllowWrite])),
            vec![None, Some(AllowWrite), Some(AllowWrite), Some(AllowWrite)]
        );
        assert_eq!(
            governing(&pol(&[AllowRead])),
            vec![Some(AllowRead), None, None, None]
        );
        assert_eq!(
            governing(&pol(&[AllowInsert, AllowUpdate])),
            vec![None, Some(AllowInsert), Some(AllowUpdate), None]
        );
    }

    #[test]
    fn keys_round_trip() {
        for r in Rule::ALL {
            assert_eq!(Rule::from_key(r.key()), Some(r));
        }
        assert_eq!(Rule::from_key("allowread"), None);
        assert!(Rule::AllowWrite.covers(Action::Insert) && !Rule::AllowWrite.covers(Action::Read));
        assert!(Rule::AllowRead.covers(Action::Read) && !Rule::AllowRead.covers(Action::Update));
    }

    #[test]
    fn duplicate_rule_keeps_last() {
        let p = Policy::new(
            "p",
            "E",
            vec![
                (Rule::Allow, Expr::Bool(false)),
                (Rule::Allow, Expr::Bool(true)),
            ],
        );
        assert_eq!(p.rules().len(), 1);
        assert_eq!(p.rule_for(Action::Read).unwrap().1, Expr::Bool(true));
    }
}
