//! Reading one value: numbers, durations, strings, labels, buckets; each
//! mistake an error on the value's tokens that says what to write.

use std::time::Duration;

use proc_macro2::Span;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, LitStr, Token};

use super::{Arg, Errors, Value};

pub(super) fn max_of<T: TryFrom<u64>>() -> u64 {
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

pub(super) fn string_value(arg: &Arg, key: &str) -> syn::Result<LitStr> {
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

pub(super) fn int_value(arg: &Arg, key: &str) -> syn::Result<(u64, Span)> {
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
pub(crate) fn number(expr: &Expr) -> Option<f64> {
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

pub(super) fn labels(arg: &Arg, reserved: &[&str]) -> syn::Result<Vec<(String, LitStr)>> {
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

pub(super) fn buckets(arg: &Arg) -> syn::Result<Vec<f64>> {
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
