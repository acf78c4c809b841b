//! Argument parsing shared by every attribute: `key = value`, `key(...)` and
//! bare flags. Every mistake is reported on its own tokens, and all the
//! mistakes of one attribute are reported together.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Token};

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

fn max_of<T: TryFrom<u64>>() -> u64 {
    // The largest u64 that converts, found bit by bit from the top.
    let mut max = 0u64;
    for bit in (0..64).rev() {
        let candidate = max | (1 << bit);
        if T::try_from(candidate).is_ok() {
            max = candidate;
        }
    }
    max
}

pub(crate) fn string_value(arg: &Arg, key: &str) -> syn::Result<LitStr> {
    match &arg.value {
        Value::Expr(Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        })) => Ok(s.clone()),
        Value::Expr(e) => Err(syn::Error::new_spanned(
            e,
            format!("`{key}` expects a string literal, like `{key} = \"...\"`"),
        )),
        _ => Err(syn::Error::new(
            arg.key.span(),
            format!("`{key}` expects a string literal, like `{key} = \"...\"`"),
        )),
    }
}

fn int_value(arg: &Arg, key: &str) -> syn::Result<(u64, Span)> {
    match &arg.value {
        Value::Expr(Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        })) if i.suffix().is_empty() => Ok((i.base10_parse::<u64>()?, i.span())),
        Value::Expr(e @ Expr::Unary(u)) if matches!(u.op, syn::UnOp::Neg(_)) => {
            Err(syn::Error::new_spanned(
                e,
                format!("`{key}` cannot be negative; it is a whole number like `{key} = 10`"),
            ))
        }
        Value::Expr(e) => Err(syn::Error::new_spanned(
            e,
            format!("`{key}` expects a whole number, like `{key} = 10`"),
        )),
        _ => Err(syn::Error::new(
            arg.key.span(),
            format!("`{key}` expects a value: `{key} = 10`"),
        )),
    }
}

/// A number literal, possibly negated.
fn number(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => match lit {
            Lit::Float(f) if f.suffix().is_empty() || f.suffix() == "f64" => {
                f.base10_parse::<f64>().ok()
            }
            Lit::Int(i) if i.suffix().is_empty() => i.base10_parse::<f64>().ok(),
            _ => None,
        },
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => number(&u.expr).map(|v| -v),
        _ => None,
    }
}

/// A duration given as a string literal. Numbers with a unit suffix
/// (`2s`, `100ms`) are refused with the spelling to use instead.
pub(crate) fn duration_expr(
    e: &Expr,
    key: &str,
    zero_allowed: bool,
) -> syn::Result<(Duration, Span)> {
    match e {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => duration_lit(s, zero_allowed).map(|d| (d, s.span())),
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) if !i.suffix().is_empty() => Err(syn::Error::new(
            i.span(),
            format!(
                "a duration is a string: write `{key} = \"{}\"`",
                i.to_token_stream()
            ),
        )),
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) if !f.suffix().is_empty() => Err(syn::Error::new(
            f.span(),
            format!(
                "a duration is a string: write `{key} = \"{}\"`",
                f.to_token_stream()
            ),
        )),
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => Err(syn::Error::new(
            i.span(),
            format!(
                "a duration needs a unit and quotes: write `{key} = \"{}ms\"` or `{key} = \"{}s\"`",
                i.base10_digits(),
                i.base10_digits()
            ),
        )),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{key}` expects a duration string, like `{key} = \"250ms\"`"),
        )),
    }
}

/// `"250ms"`; `"0ms"` too where zero means "do not wait".
pub(crate) fn duration_lit(lit: &LitStr, zero_allowed: bool) -> syn::Result<Duration> {
    let text = lit.value();
    if zero_allowed {
        let trimmed = text.trim();
        let unit = trimmed.trim_start_matches('0');
        if trimmed.starts_with('0')
            && unit.chars().all(char::is_alphabetic)
            && cortex_rules::parse_duration(&format!("1{unit}")).is_ok()
        {
            return Ok(Duration::ZERO);
        }
    }
    cortex_rules::parse_duration(&text)
        .map(Duration::from_nanos)
        .map_err(|e| syn::Error::new(lit.span(), e.to_string()))
}

fn labels(arg: &Arg, reserved: &[&str]) -> syn::Result<Vec<(String, LitStr)>> {
    let tokens = match &arg.value {
        Value::List(tokens, _) => tokens.clone(),
        Value::Expr(e) => {
            return Err(syn::Error::new_spanned(
                e,
                "`labels` takes a list: `labels(team = \"payments\", tier = \"1\")`",
            ))
        }
        Value::Flag => {
            return Err(syn::Error::new(
                arg.key.span(),
                "`labels` takes a list: `labels(team = \"payments\", tier = \"1\")`",
            ))
        }
    };
    let pairs = syn::parse::Parser::parse2(
        Punctuated::<syn::MetaNameValue, Token![,]>::parse_terminated,
        tokens,
    )?;
    let mut errors = Errors::default();
    let mut out: Vec<(String, LitStr)> = Vec::new();
    for pair in pairs {
        let Some(ident) = pair.path.get_ident() else {
            errors.push(syn::Error::new_spanned(
                &pair.path,
                "a label name is a single identifier",
            ));
            continue;
        };
        let name = ident.unraw().to_string();
        if let Err(e) = cortex_rules::check_label_name(&name) {
            errors.push(syn::Error::new(ident.span(), e.to_string()));
            continue;
        }
        if reserved.contains(&name.as_str()) {
            errors.push(syn::Error::new(
                ident.span(),
                format!(
                    "label `{name}` is set by Cortex itself; the reserved names are: {}",
                    reserved.join(", ")
                ),
            ));
            continue;
        }
        if out.iter().any(|(n, _)| *n == name) {
            errors.push(syn::Error::new(
                ident.span(),
                format!("duplicate label `{name}`: give each label once"),
            ));
            continue;
        }
        match pair.value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => out.push((name, s)),
            other => errors.push(syn::Error::new_spanned(
                other,
                "a label value is a string literal, like `team = \"payments\"`",
            )),
        }
    }
    errors.finish()?;
    Ok(out)
}

fn buckets(arg: &Arg) -> syn::Result<Vec<f64>> {
    let array = match &arg.value {
        Value::Expr(Expr::Array(a)) => a,
        Value::Expr(other) => {
            return Err(syn::Error::new_spanned(
                other,
                "`buckets` expects a list of numbers, like `buckets = [0.01, 0.1, 1.0]`",
            ))
        }
        _ => {
            return Err(syn::Error::new(
                arg.key.span(),
                "`buckets` expects a list of numbers, like `buckets = [0.01, 0.1, 1.0]`",
            ))
        }
    };
    let mut values = Vec::new();
    for elem in &array.elems {
        values.push(bound(elem)?);
    }
    if let Err(e) = cortex_rules::check_buckets(&values) {
        // `new_spanned` covers the whole bound, `-0.1` or `f64::NAN`.
        return Err(match &e {
            cortex_rules::BucketsError::Empty => {
                syn::Error::new(array.bracket_token.span.join(), e.to_string())
            }
            cortex_rules::BucketsError::NotFinite { index }
            | cortex_rules::BucketsError::Negative { index, .. }
            | cortex_rules::BucketsError::Duplicate { index, .. }
            | cortex_rules::BucketsError::NotIncreasing { index, .. } => {
                syn::Error::new_spanned(&array.elems[*index], e.to_string())
            }
        });
    }
    Ok(values)
}

/// A bucket bound: a number, or `f64::NAN`/`INFINITY` reported as the rule
/// it breaks.
fn bound(expr: &Expr) -> syn::Result<f64> {
    if let Some(v) = number(expr) {
        return Ok(v);
    }
    let named = match expr {
        Expr::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    };
    match named.as_deref() {
        Some("NAN") => Ok(f64::NAN),
        Some("INFINITY") => Ok(f64::INFINITY),
        Some("NEG_INFINITY") => Ok(f64::NEG_INFINITY),
        _ => Err(syn::Error::new_spanned(
            expr,
            "a bucket bound is a number literal, like `0.25` or `1`",
        )),
    }
}

/// Checks a `name = "..."` value: a valid metric name with the suffix the
/// metric type needs.
pub(crate) fn metric_name(lit: &LitStr, suffix: &'static str) -> syn::Result<String> {
    let name = lit.value();
    cortex_rules::check_metric_name(&name)
        .map_err(|e| syn::Error::new(lit.span(), e.to_string()))?;
    cortex_rules::check_suffix(&name, suffix)
        .map_err(|e| syn::Error::new(lit.span(), e.to_string()))?;
    Ok(name)
}
