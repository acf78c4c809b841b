//! Argument parsing shared by every attribute: `key = value`, `key(...)` and
//! bare flags, with unknown and duplicate keys reported on their own tokens.

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

/// The arguments of one attribute, checked against the keys it accepts.
pub(crate) struct Args {
    args: Vec<Arg>,
}

impl Args {
    pub(crate) fn parse(
        tokens: TokenStream,
        macro_name: &str,
        valid: &[&str],
    ) -> syn::Result<Self> {
        let parsed =
            syn::parse::Parser::parse2(Punctuated::<Arg, Token![,]>::parse_terminated, tokens)?;
        let mut args: Vec<Arg> = Vec::new();
        for arg in parsed {
            let key = arg.key.unraw().to_string();
            if !valid.contains(&key.as_str()) {
                let list = valid
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(syn::Error::new(
                    arg.key.span(),
                    format!("unknown key `{key}` for #[{macro_name}]; valid keys are: {list}"),
                ));
            }
            if args.iter().any(|a| a.key.unraw() == arg.key.unraw()) {
                return Err(syn::Error::new(
                    arg.key.span(),
                    format!("duplicate key `{key}`: give each key once"),
                ));
            }
            args.push(arg);
        }
        Ok(Args { args })
    }

    pub(crate) fn take(&mut self, key: &str) -> Option<Arg> {
        let pos = self.args.iter().position(|a| a.key.unraw() == key)?;
        Some(self.args.remove(pos))
    }

    /// `key = "string"`.
    pub(crate) fn string(&mut self, key: &str) -> syn::Result<Option<LitStr>> {
        let Some(arg) = self.take(key) else {
            return Ok(None);
        };
        match arg.value {
            Value::Expr(Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            })) => Ok(Some(s)),
            Value::Expr(other) => Err(syn::Error::new_spanned(
                other,
                format!("`{key}` expects a string literal, like `{key} = \"...\"`"),
            )),
            _ => Err(syn::Error::new(
                arg.key.span(),
                format!("`{key}` expects a string literal, like `{key} = \"...\"`"),
            )),
        }
    }

    /// A bare flag, or `key = true` / `key = false`.
    pub(crate) fn flag(&mut self, key: &str) -> syn::Result<bool> {
        let Some(arg) = self.take(key) else {
            return Ok(false);
        };
        match arg.value {
            Value::Flag => Ok(true),
            Value::Expr(Expr::Lit(ExprLit {
                lit: Lit::Bool(b), ..
            })) => Ok(b.value),
            Value::Expr(other) => Err(syn::Error::new_spanned(
                other,
                format!("`{key}` is a flag: write `{key}` or `{key} = true`"),
            )),
            Value::List(_, span) => Err(syn::Error::new(
                span,
                format!("`{key}` is a flag: write `{key}` or `{key} = true`"),
            )),
        }
    }

    /// `crate = path`: where the `cortex` crate is, for re-exports.
    pub(crate) fn krate(&mut self) -> syn::Result<TokenStream> {
        let Some(arg) = self.take("crate") else {
            return Ok(quote::quote!(::cortex));
        };
        match arg.value {
            Value::Expr(Expr::Path(p)) if p.qself.is_none() => Ok(p.path.into_token_stream()),
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
        }
    }

    /// `labels(key = "value", ...)`.
    pub(crate) fn labels(&mut self, reserved: &[&str]) -> syn::Result<Vec<(String, LitStr)>> {
        let Some(arg) = self.take("labels") else {
            return Ok(Vec::new());
        };
        let tokens = match arg.value {
            Value::List(tokens, _) => tokens,
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
        let mut out: Vec<(String, LitStr)> = Vec::new();
        for pair in pairs {
            let Some(ident) = pair.path.get_ident() else {
                return Err(syn::Error::new_spanned(
                    &pair.path,
                    "a label name is a single identifier",
                ));
            };
            let name = ident.unraw().to_string();
            cortex_rules::check_label_name(&name)
                .map_err(|e| syn::Error::new(ident.span(), e.to_string()))?;
            if reserved.contains(&name.as_str()) {
                return Err(syn::Error::new(
                    ident.span(),
                    format!(
                        "label `{name}` is set by Cortex itself; the reserved names are: {}",
                        reserved.join(", ")
                    ),
                ));
            }
            if out.iter().any(|(n, _)| *n == name) {
                return Err(syn::Error::new(
                    ident.span(),
                    format!("duplicate label `{name}`: give each label once"),
                ));
            }
            let value = match pair.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => s,
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "a label value is a string literal, like `team = \"payments\"`",
                    ))
                }
            };
            out.push((name, value));
        }
        Ok(out)
    }

    /// `buckets = [0.1, 0.5, 1]`: number literals, checked by the same rule
    /// the runtime uses.
    pub(crate) fn buckets(&mut self) -> syn::Result<Option<Vec<f64>>> {
        let Some(arg) = self.take("buckets") else {
            return Ok(None);
        };
        let array = match arg.value {
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
            values.push(number(elem)?);
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
        Ok(Some(values))
    }
}

fn number(expr: &Expr) -> syn::Result<f64> {
    let bad = || {
        syn::Error::new_spanned(
            expr,
            "a bucket bound is a number literal, like `0.25` or `1`",
        )
    };
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => match lit {
            Lit::Float(f) => f.base10_parse::<f64>(),
            Lit::Int(i) => i.base10_parse::<f64>(),
            _ => Err(bad()),
        },
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => Ok(-number(&u.expr)?),
        // `f64::NAN`, `f64::INFINITY`: report them as the rule they break.
        Expr::Path(p) => match p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .as_deref()
        {
            Some("NAN") => Ok(f64::NAN),
            Some("INFINITY") => Ok(f64::INFINITY),
            Some("NEG_INFINITY") => Ok(f64::NEG_INFINITY),
            _ => Err(bad()),
        },
        _ => Err(bad()),
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
