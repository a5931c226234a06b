//! What a route declares about its authorisation: the requirements of its attributes, or that
//! it is public on purpose. Read by azad-axum's deny-by-default router and route listings.

use std::fmt;

use crate::authorization::Requirement;

/// A handler's authorisation declaration, as its attributes state it (the attributes emit it
/// in a companion item; see azad-macros). Built at compile time.
///
/// # Example
///
/// ```
/// use azad_tower::{Declaration, Requirement};
///
/// const LIST: Declaration = Declaration::__new("list", false, &[]);
/// assert!(LIST.requirements().is_empty());
/// assert!(!LIST.is_declared());
/// let public = Declaration::__new("health", true, &[]);
/// assert!(public.is_declared());
/// assert_eq!(public.to_string(), "public");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Declaration {
    handler: &'static str,
    public: bool,
    requirements: &'static [Requirement],
}

impl fmt::Debug for Declaration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Declaration")
            .field("handler", &self.handler)
            .field("public", &self.public)
            .field("requirements", &self.requirements)
            .finish()
    }
}

impl Declaration {
    #[doc(hidden)]
    #[must_use]
    pub const fn __new(handler: &'static str, public: bool, requirements: &'static [Requirement]) -> Self {
        Self { handler, public, requirements }
    }

    /// The handler's function name.
    #[must_use]
    pub fn handler(&self) -> &'static str {
        self.handler
    }

    /// Whether the handler is declared public (`#[allow_anonymous]`).
    #[must_use]
    pub fn is_public(&self) -> bool {
        self.public
    }

    /// The requirements, in the order the attributes are written (all must be met).
    #[must_use]
    pub fn requirements(&self) -> &'static [Requirement] {
        self.requirements
    }

    /// Whether this declares anything: a requirement, or public.
    #[must_use]
    pub fn is_declared(&self) -> bool {
        self.public || !self.requirements.is_empty()
    }
}

/// `public`, `undeclared`, or the requirements' [summaries](Requirement::summary) joined by ` + `.
impl fmt::Display for Declaration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.public {
            return f.write_str("public");
        }
        if self.requirements.is_empty() {
            return f.write_str("undeclared");
        }
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(" + ")?;
            }
            f.write_str(&r.summary())?;
        }
        Ok(())
    }
}
