//! How stacked attributes nest in source order, however they are spelled.
//!
//! Attribute macros on one item expand top to bottom, and each receives the
//! item with the attributes below it still on it. A macro cannot tell
//! whether an attribute spelled `#[retry]` is ours, but it can recognise a
//! marker it writes itself. So the first Cortex attribute to expand checks
//! its options and appends `#[<crate>::__private::__cortex_stack(<kind>(<options>))]`
//! as the last attribute of the item, leaving the body alone; every later
//! Cortex attribute checks its options and adds its own entry to that
//! marker, in order. The marker, expanding last, generates the whole nest at
//! once: the first entry is the outermost layer.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Attribute, Ident, Meta, Token};

use crate::expand::{self, Layer};
use crate::item;

/// The macro that carries the stack; a name no user writes.
const MARKER: &str = "__cortex_stack";

/// Which Cortex attribute an entry is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Counted,
    Timed,
    Traced,
    CircuitBreaker,
    Retry,
    Bulkhead,
    Timeout,
    RateLimit,
    Objective,
}

const KINDS: &[(Kind, &str)] = &[
    (Kind::Counted, "counted"),
    (Kind::Timed, "timed"),
    (Kind::Traced, "traced"),
    (Kind::CircuitBreaker, "circuit_breaker"),
    (Kind::Retry, "retry"),
    (Kind::Bulkhead, "bulkhead"),
    (Kind::Timeout, "timeout"),
    (Kind::RateLimit, "rate_limit"),
    (Kind::Objective, "objective"),
];

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("cortex", |(_, n)| n)
    }

    fn from_name(name: &str) -> Option<Kind> {
        KINDS.iter().find(|(_, n)| *n == name).map(|(k, _)| *k)
    }
}

/// One attribute of the stack: its kind (spanned on the attribute, for
/// errors about its place in the stack) and its options as written.
pub(crate) struct Entry {
    pub(crate) kind: Kind,
    pub(crate) span: Span,
    pub(crate) args: TokenStream,
}

impl Parse for Entry {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let ident: Ident = input.parse()?;
        let kind = Kind::from_name(&ident.to_string())
            .ok_or_else(|| syn::Error::new(ident.span(), "unknown Cortex attribute"))?;
        let content;
        syn::parenthesized!(content in input);
        Ok(Entry {
            kind,
            span: ident.span(),
            args: content.parse()?,
        })
    }
}

/// A Cortex attribute (`#[counted]`, `#[retry]`, ...): checks its options,
/// then joins the stack.
pub(crate) fn attribute(kind: Kind, args: TokenStream, tokens: TokenStream) -> TokenStream {
    match join(kind, args, tokens.clone()) {
        Ok(out) => out,
        Err(err) => expand::with_error(tokens, &err),
    }
}

fn join(kind: Kind, args: TokenStream, tokens: TokenStream) -> syn::Result<TokenStream> {
    let mut item = item::parse(tokens, kind.name())?;
    // The options are checked here, so their mistakes are reported on this
    // attribute's tokens, once.
    let layer = Layer::parse(kind, args.clone(), Span::call_site())?;
    // Spanned on the attribute itself: errors about its place in the stack
    // point there.
    let tag = Ident::new(kind.name(), Span::call_site());
    let entry = quote!(#tag(#args));
    match item.attrs.iter_mut().rev().find(|a| is_marker(a)) {
        Some(marker) => {
            let Meta::List(list) = &mut marker.meta else {
                return Err(syn::Error::new_spanned(marker, "malformed Cortex stack"));
            };
            let tokens = std::mem::take(&mut list.tokens);
            list.tokens = quote!(#tokens, #entry);
        }
        None => {
            let krate = layer.krate();
            item.attrs
                .push(syn::parse_quote!(#[#krate::__private::__cortex_stack(#entry)]));
        }
    }
    Ok(quote!(#item))
}

fn is_marker(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == MARKER)
}

/// The marker: generates the whole nest.
pub(crate) fn marker(args: TokenStream, tokens: TokenStream) -> TokenStream {
    let item = match item::parse(tokens.clone(), "cortex") {
        Ok(item) => item,
        Err(err) => return expand::with_error(tokens, &err),
    };
    let entries =
        match syn::parse::Parser::parse2(Punctuated::<Entry, Token![,]>::parse_terminated, args) {
            Ok(entries) => entries,
            Err(err) => return expand::with_error(quote!(#item), &err),
        };
    let mut layers = Vec::new();
    for entry in entries {
        // Checked when the attribute joined the stack; parsed again here.
        match Layer::parse(entry.kind, entry.args, entry.span) {
            Ok(layer) => layers.push(layer),
            Err(err) => return expand::with_error(quote!(#item), &err),
        }
    }
    match expand::nest::generate(layers, item.clone()) {
        Ok(out) => out,
        Err(err) => expand::with_error(quote!(#item), &err),
    }
}
