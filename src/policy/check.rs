//! Checking an action against the policies of a manifest.
//!
//! Combination rule, in order:
//! 1. an admin caller (`auth.is_admin`) is always allowed;
//! 2. an entity with no policy at all is open: any caller the shard let in
//!    may read and write it (shard access is checked at the edge);
//! 3. otherwise the entity is governed: the action is allowed iff at least
//!    one of its policies has a rule covering the action that evaluates to
//!    `true`. An action that no policy of the entity covers is denied.
//!
//! A denial names the first policy (in manifest order) whose rule refused,
//! or says that no rule covers the action.
//!
//! ```
//! use pylon_workers::policy::{AuthContext, Policies, Policy, Rule};
//! use pylon_workers::value::{Row, Value};
//! let p = Policies::new(vec![Policy::new("todoOwner", "Todo", vec![
//!     (Rule::Allow, "data.ownerId == auth.userId".parse().unwrap()),
//! ])]);
//! let row: Row = [("ownerId".to_string(), Value::from("alice"))].into();
//! assert!(p.can_read("Todo", &AuthContext::user("alice"), &row).is_allowed());
//! let no = p.can_delete("Todo", &AuthContext::user("bob"), &row);
//! assert_eq!(no.to_string(), "policy todoOwner (allow) denied delete on Todo");
//! assert!(p.can_delete("Note", &AuthContext::anonymous(), &row).is_allowed());
//! ```

use std::collections::HashMap;
use std::fmt;

use super::auth::AuthContext;
use super::eval::Scope;
use super::rule::{Action, Policy, Rule};
use crate::value::Row;

/// The outcome of a policy check. `Deny` borrows from the [`Policies`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision<'p> {
    Allow,
    Deny(Denial<'p>),
}

impl Decision<'_> {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

impl fmt::Display for Decision<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow => f.write_str("allowed"),
            Decision::Deny(d) => d.fmt(f),
        }
    }
}

/// Why an action was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denial<'p> {
    pub entity: &'p str,
    pub action: Action,
    /// The policy and rule that refused; `None` when no rule covers the action.
    pub refused_by: Option<(&'p str, Rule)>,
}

impl Denial<'_> {
    /// `POLICY_DENIED` or `NO_POLICY_RULE`.
    pub fn code(&self) -> &'static str {
        match self.refused_by {
            Some(_) => "POLICY_DENIED",
            None => "NO_POLICY_RULE",
        }
    }
}

impl fmt::Display for Denial<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.refused_by {
            Some((policy, rule)) => {
                write!(
                    f,
                    "policy {policy} ({rule}) denied {} on {}",
                    self.action, self.entity
                )
            }
            None => write!(
                f,
                "no policy rule allows {} on {}",
                self.action, self.entity
            ),
        }
    }
}

/// All policies of a manifest, grouped by entity.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policies {
    policies: Vec<Policy>,
    by_entity: HashMap<String, Vec<usize>>,
}

impl Policies {
    pub fn new(policies: Vec<Policy>) -> Self {
        let mut by_entity: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, p) in policies.iter().enumerate() {
            by_entity.entry(p.entity.clone()).or_default().push(i);
        }
        Policies {
            policies,
            by_entity,
        }
    }

    /// Every policy, in manifest order.
    pub fn all(&self) -> &[Policy] {
        &self.policies
    }

    pub fn get(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }

    /// The policies of one entity. Look this up once, then check many rows.
    pub fn for_entity<'p>(&'p self, entity: &str) -> EntityPolicies<'p> {
        match self.by_entity.get_key_value(entity) {
            Some((name, ids)) => EntityPolicies {
                all: &self.policies,
                ids,
                entity: name,
            },
            None => EntityPolicies {
                all: &self.policies,
                ids: &[],
                entity: "",
            },
        }
    }

    pub fn can_read<'p>(&'p self, entity: &str, auth: &AuthContext, row: &Row) -> Decision<'p> {
        self.for_entity(entity).can_read(auth, row)
    }

    /// `input` is the new row.
    pub fn can_insert<'p>(&'p self, entity: &str, auth: &AuthContext, input: &Row) -> Decision<'p> {
        self.for_entity(entity).can_insert(auth, input)
    }

    /// `stored` is the row before the update, `input` the `set` map.
    pub fn can_update<'p>(
        &'p self,
        entity: &str,
        auth: &AuthContext,
        stored: &Row,
        input: &Row,
    ) -> Decision<'p> {
        self.for_entity(entity).can_update(auth, stored, input)
    }

    pub fn can_delete<'p>(
        &'p self,
        entity: &str,
        auth: &AuthContext,
        stored: &Row,
    ) -> Decision<'p> {
        self.for_entity(entity).can_delete(auth, stored)
    }
}

/// The policies of one entity (possibly none).
#[derive(Clone, Copy, Debug)]
pub struct EntityPolicies<'p> {
    all: &'p [Policy],
    ids: &'p [usize],
    entity: &'p str,
}

impl<'p> EntityPolicies<'p> {
    /// Whether the entity has no policy, and so is open to every caller.
    pub fn is_open(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn can_read(&self, auth: &AuthContext, row: &Row) -> Decision<'p> {
        self.check(
            Action::Read,
            &Scope {
                auth,
                data: Some(row),
                input: None,
            },
        )
    }

    pub fn can_insert(&self, auth: &AuthContext, input: &Row) -> Decision<'p> {
        self.check(
            Action::Insert,
            &Scope {
                auth,
                data: Some(input),
                input: Some(input),
            },
        )
    }

    pub fn can_update(&self, auth: &AuthContext, stored: &Row, input: &Row) -> Decision<'p> {
        self.check(
            Action::Update,
            &Scope {
                auth,
                data: Some(stored),
                input: Some(input),
            },
        )
    }

    pub fn can_delete(&self, auth: &AuthContext, stored: &Row) -> Decision<'p> {
        self.check(
            Action::Delete,
            &Scope {
                auth,
                data: Some(stored),
                input: None,
            },
        )
    }

    /// The general check: `scope.auth` wants to perform `action`.
    pub fn check(&self, action: Action, scope: &Scope<'_>) -> Decision<'p> {
        if scope.auth.is_admin || self.is_open() {
            return Decision::Allow;
        }
        let mut refused_by = None;
        for &i in self.ids {
            let p = &self.all[i];
            if let Some((rule, expr)) = p.rule_for(action) {
                if expr.allows(scope) {
                    return Decision::Allow;
                }
                refused_by = refused_by.or(Some((p.name.as_str(), *rule)));
            }
        }
        Decision::Deny(Denial {
            entity: self.entity,
            action,
            refused_by,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn policy(name: &str, entity: &str, rules: &[(Rule, &str)]) -> Policy {
        Policy::new(
            name,
            entity,
            rules
                .iter()
                .map(|(r, s)| (*r, s.parse().unwrap()))
                .collect(),
        )
    }

    fn row(owner: &str) -> Row {
        [
            ("ownerId".to_string(), Value::from(owner)),
            ("id".to_string(), Value::from("t1")),
        ]
        .into()
    }

    fn set() -> Policies {
        Policies::new(vec![
            policy(
                "todoOwner",
                "Todo",
                &[
                    (Rule::AllowRead, "auth.userId != null"),
                    (Rule::AllowWrite, "data.ownerId == auth.userId"),
                    (
                        Rule::AllowUpdate,
                        "data.ownerId == auth.userId && input.ownerId == null",
                    ),
                ],
            ),
            policy(
                "todoEditors",
                "Todo",
                &[(Rule::AllowUpdate, "auth.hasRole('editor')")],
            ),
            policy("readOnly", "Log", &[(Rule::AllowRead, "true")]),
        ])
    }

    #[test]
    fn open_entities_and_admins() {
        let p = set();
        let anon = AuthContext::anonymous();
        assert!(p.for_entity("Note").is_open());
        assert!(p.can_insert("Note", &anon, &row("x")).is_allowed());
        assert!(p.can_delete("Note", &anon, &row("x")).is_allowed());
        let admin = AuthContext::admin();
        assert!(p.can_read("Todo", &admin, &row("x")).is_allowed());
        assert!(p.can_insert("Log", &admin, &row("x")).is_allowed());
    }

    #[test]
    fn first_refusing_policy_is_named() {
        let p = set();
        let bob = AuthContext::user("bob");
        let d = p.can_update("Todo", &bob, &row("alice"), &Row::new());
        let Decision::Deny(denial) = d else {
            panic!("allowed")
        };
        assert_eq!(denial.refused_by, Some(("todoOwner", Rule::AllowUpdate)));
        assert_eq!(denial.code(), "POLICY_DENIED");
        assert_eq!(
            d.to_string(),
            "policy todoOwner (allowUpdate) denied update on Todo"
        );
        let d = p.can_delete("Todo", &bob, &row("alice"));
        assert_eq!(
            d.to_string(),
            "policy todoOwner (allowWrite) denied delete on Todo"
        );
        let d = p.can_read("Todo", &AuthContext::anonymous(), &row("alice"));
        assert_eq!(
            d.to_string(),
            "policy todoOwner (allowRead) denied read on Todo"
        );
    }

    #[test]
    fn any_allowing_policy_is_enough() {
        let p = set();
        let editor = AuthContext::user("bob").with_roles(["editor"]);
        assert!(p
            .can_update("Todo", &editor, &row("alice"), &Row::new())
            .is_allowed());
        // But the editors policy says nothing about delete.
        assert!(!p.can_delete("Todo", &editor, &row("alice")).is_allowed());
    }

    #[test]
    fn data_and_input_per_action() {
        let p = set();
        let alice = AuthContext::user("alice");
        // Insert: data is the new row.
        assert!(p.can_insert("Todo", &alice, &row("alice")).is_allowed());
        assert!(!p.can_insert("Todo", &alice, &row("bob")).is_allowed());
        // Update: data is the stored row, input the set map.
        let give_away: Row = [("ownerId".to_string(), Value::from("bob"))].into();
        assert!(!p
            .can_update("Todo", &alice, &row("alice"), &give_away)
            .is_allowed());
        assert!(p
            .can_update("Todo", &alice, &row("alice"), &Row::new())
            .is_allowed());
        assert!(p.can_delete("Todo", &alice, &row("alice")).is_allowed());
    }

    #[test]
    fn uncovered_action_on_governed_entity_is_denied() {
        let p = set();
        let d = p.can_insert("Log", &AuthContext::user("u"), &row("u"));
        let Decision::Deny(denial) = d else {
            panic!("allowed")
        };
        assert_eq!(denial.code(), "NO_POLICY_RULE");
        assert_eq!(d.to_string(), "no policy rule allows insert on Log");
        assert!(p
            .can_read("Log", &AuthContext::anonymous(), &row("u"))
            .is_allowed());
    }
}
