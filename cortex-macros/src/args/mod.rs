//! Argument parsing shared by every attribute: `key = value`, `key(...)` and
//! bare flags. Every mistake is reported on its own tokens, and all the
//! mistakes of one attribute are reported together.

mod values;

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Token};

use values::{buckets, int_value, labels, max_of, string_value};
pub(crate) use values::{duration_expr, duration_lit, metric_name, number};

/// One argument as written.
pub(crate) struct Arg {
    pub(crate) key: Ident,
    pub(crate) value: Value,
}

pub(crate) enum Value {
    /// A bare flag: `track_in_flight`.
    Flag,
    /// `key = expr`.
    Expr(Expr),
    /// `key(...)`: the tokens inside the parentheses.
    List(TokenStream, Span),
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        // `crate` is a keyword; accept it as a key like any identifier.
        let key = Ident::parse_any(input)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Value::Expr(input.parse()?)
        } else if input.peek(syn::token::Paren) {
            let content;
            let paren = syn::parenthesized!(content in input);
            Value::List(content.parse()?, paren.span.join())
        } else {
            Value::Flag
        };
        Ok(Arg { key, value })
    }
}

/// Collects errors so that one attribute's mistakes are reported at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// Keeps the value, or records the error and gives `None`.
    pub(crate) fn ok<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(e);
                None
            }
        }
    }

    /// Whether a mistake was found.
    pub(crate) fn any(&self) -> bool {
        self.0.is_some()
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.0 {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The arguments of one attribute, checked against the keys it accepts.
pub(crate) struct Args {
    args: Vec<Arg>,
    /// Mistakes found so far; see [`Args::finish`].
    pub(crate) errors: Errors,
}

impl Args {
    /// Parses `tokens`; unknown and repeated keys are recorded as errors and
    /// left out, so the other keys are still checked.
    pub(crate) fn parse(
        tokens: TokenStream,
        macro_name: &str,
        valid: &[&str],
    ) -> syn::Result<Self> {
        let parsed =
            syn::parse::Parser::parse2(Punctuated::<Arg, Token![,]>::parse_terminated, tokens)?;
        let mut errors = Errors::default();
        let mut args: Vec<Arg> = Vec::new();
        for arg in parsed {
            let key = arg.key.unraw().to_string();
            if !valid.contains(&key.as_str()) {
                let list = valid
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                errors.push(syn::Error::new(
                    arg.key.span(),
                    format!("unknown key `{key}` for #[{macro_name}]; valid keys are: {list}"),
                ));
                continue;
            }
            if args.iter().any(|a| a.key.unraw() == arg.key.unraw()) {
                errors.push(syn::Error::new(
                    arg.key.span(),
                    format!("duplicate key `{key}`: give each key once"),
                ));
                continue;
            }
            args.push(arg);
        }
        Ok(Args { args, errors })
    }

    /// Every mistake found, combined.
    pub(crate) fn finish(self) -> syn::Result<()> {
        self.errors.finish()
    }

    pub(crate) fn error(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    pub(crate) fn take(&mut self, key: &str) -> Option<Arg> {
        let pos = self.args.iter().position(|a| a.key.unraw() == key)?;
        Some(self.args.remove(pos))
    }

    /// Takes `key` and converts its value, recording a mistake.
    fn get<T>(&mut self, key: &str, convert: impl FnOnce(&Arg) -> syn::Result<T>) -> Option<T> {
        let arg = self.take(key)?;
        let result = convert(&arg);
        self.errors.ok(result)
    }

    /// `key = "string"`.
    pub(crate) fn string(&mut self, key: &str) -> Option<LitStr> {
        self.get(key, |arg| string_value(arg, key))
    }

    /// `key = "string"` that may not be blank.
    pub(crate) fn name(&mut self, key: &str, what: &str) -> Option<LitStr> {
        let lit = self.string(key)?;
        if lit.value().trim().is_empty() {
            self.error(syn::Error::new(
                lit.span(),
                format!("{what} must not be empty"),
            ));
            return None;
        }
        Some(lit)
    }

    /// A bare flag, or `key = true` / `key = false`.
    pub(crate) fn flag(&mut self, key: &str) -> bool {
        self.get(key, |arg| match &arg.value {
            Value::Flag => Ok(true),
            Value::Expr(Expr::Lit(ExprLit {
                lit: Lit::Bool(b), ..
            })) => Ok(b.value),
            Value::Expr(other) => Err(syn::Error::new_spanned(
                other,
                format!("`{key}` is a flag: write `{key}` or `{key} = true`"),
            )),
            Value::List(_, span) => Err(syn::Error::new(
                *span,
                format!("`{key}` is a flag: write `{key}` or `{key} = true`"),
            )),
        })
        .unwrap_or(false)
    }

    /// `key = true | false`.
    pub(crate) fn boolean(&mut self, key: &str) -> Option<bool> {
        self.get(key, |arg| match &arg.value {
            Value::Expr(Expr::Lit(ExprLit {
                lit: Lit::Bool(b), ..
            })) => Ok(b.value),
            Value::Expr(other) => Err(syn::Error::new_spanned(
                other,
                format!("`{key}` expects `true` or `false`"),
            )),
            _ => Err(syn::Error::new(
                arg.key.span(),
                format!("`{key}` expects a value: `{key} = false`"),
            )),
        })
    }

    /// `key = 10`: a whole number that fits `T`.
    pub(crate) fn int<T: TryFrom<u64>>(&mut self, key: &str) -> Option<(T, Span)> {
        self.get(key, |arg| {
            let (v, span) = int_value(arg, key)?;
            let max = max_of::<T>();
            T::try_from(v).map(|t| (t, span)).map_err(|_| {
                syn::Error::new(span, format!("`{key}`: {v} is too large (at most {max})"))
            })
        })
    }

    /// `key = 0.5` (or `1`, or `-0.5`: the rule that the number breaks is
    /// reported by the caller, so the message says what to write).
    pub(crate) fn float(&mut self, key: &str) -> Option<(f64, TokenStream)> {
        self.get(key, |arg| match &arg.value {
            Value::Expr(e) => match number(e) {
                Some(v) => Ok((v, e.to_token_stream())),
                None => Err(syn::Error::new_spanned(
                    e,
                    format!("`{key}` expects a number, like `{key} = 0.5`"),
                )),
            },
            _ => Err(syn::Error::new(
                arg.key.span(),
                format!("`{key}` expects a value: `{key} = 0.5`"),
            )),
        })
    }

    /// `key = "250ms"`.
    pub(crate) fn duration(&mut self, key: &str, zero_allowed: bool) -> Option<(Duration, Span)> {
        self.get(key, |arg| match &arg.value {
            Value::Expr(e) => duration_expr(e, key, zero_allowed),
            _ => Err(syn::Error::new(
                arg.key.span(),
                format!("`{key}` expects a value: `{key} = \"1s\"`"),
            )),
        })
    }

    /// `key = path::to::function`.
    pub(crate) fn path(&mut self, key: &str) -> Option<syn::Path> {
        self.get(key, |arg| match &arg.value {
            Value::Expr(Expr::Path(p)) if p.qself.is_none() => Ok(p.path.clone()),
            Value::Expr(e) => Err(syn::Error::new_spanned(
                e,
                format!("`{key}` expects a function path, like `{key} = my_fn`"),
            )),
            _ => Err(syn::Error::new(
                arg.key.span(),
                format!("`{key}` expects a function path, like `{key} = my_fn`"),
            )),
        })
    }

    /// `crate = path`: where the `cortex` crate is, for re-exports.
    pub(crate) fn krate(&mut self) -> TokenStream {
        self.get("crate", |arg| match &arg.value {
            Value::Expr(Expr::Path(p)) if p.qself.is_none() => Ok(p.path.to_token_stream()),
            Value::Expr(Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            })) => Ok(s.parse::<syn::Path>()?.into_token_stream()),
            Value::Expr(other) => Err(syn::Error::new_spanned(
                other,
                "`crate` expects a path, like `crate = ::my_reexport::cortex`",
            )),
            _ => Err(syn::Error::new(
                arg.key.span(),
                "`crate` expects a path, like `crate = ::my_reexport::cortex`",
            )),
        })
        .unwrap_or_else(|| quote::quote!(::cortex))
    }

    /// `labels(key = "value", ...)`.
    pub(crate) fn labels(&mut self, reserved: &[&str]) -> Vec<(String, LitStr)> {
        self.get("labels", |arg| labels(arg, reserved))
            .unwrap_or_default()
    }

    /// `buckets = [0.1, 0.5, 1]`: number literals, checked by the same rule
    /// the runtime uses.
    pub(crate) fn buckets(&mut self) -> Option<Vec<f64>> {
        self.get("buckets", buckets)
    }
}
