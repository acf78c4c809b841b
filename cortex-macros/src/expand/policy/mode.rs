//! How policies hand a rejection back: as the function's own `Err` (it
//! returns `Result<T, E>` with `E: From<resilience::Error>`), or, with a
//! fallback on a function that returns a plain value, as an `Err` carried
//! inside the stack until the outermost fallback turns it into a value.
//!
//! A return type is a `Result` when it is written as one. A type the macro
//! cannot see into (an alias, a type parameter) counts as a plain value,
//! and the expansion checks that it is not a `Result` after all: a
//! `Result` alias with a fallback is a compile error naming the fix, never
//! a silent change of meaning.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{GenericArgument, PathArguments, Type};

use crate::expand::nest::Ctx;
use crate::expand::Layer;
use crate::item::Output;
use crate::stack::Kind;

/// Written as `Result<..>` (any path ending in `Result`).
pub(crate) fn returns_result(output: &Output) -> bool {
    value_type(output).is_some_and(|ty| match ty {
        Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
        _ => false,
    })
}

fn value_type(output: &Output) -> Option<Type> {
    syn::parse2::<Type>(output.ty.clone()).ok()
}

/// Types that can never be a `Result`.
pub(crate) fn clearly_not_result(ty: &Type) -> bool {
    const PLAIN: &[&str] = &[
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
        "f32", "f64", "bool", "char", "str", "String", "Vec", "Option", "Box",
    ];
    match ty {
        Type::Tuple(_)
        | Type::Reference(_)
        | Type::Array(_)
        | Type::Slice(_)
        | Type::Never(_)
        | Type::ImplTrait(_)
        | Type::Ptr(_)
        | Type::BareFn(_)
        | Type::TraitObject(_) => true,
        Type::Paren(p) => clearly_not_result(&p.elem),
        Type::Path(p) => {
            p.qself.is_none()
                && p.path.segments.len() == 1
                && PLAIN.contains(&p.path.segments[0].ident.to_string().as_str())
        }
        _ => false,
    }
}

/// The span of `E` in `Result<T, E>` (else of the whole type), where a
/// missing `From<resilience::Error>` is reported.
fn error_span(ty: &Type) -> proc_macro2::Span {
    if let Type::Path(p) = ty {
        if let Some(last) = p.path.segments.last() {
            if let PathArguments::AngleBracketed(args) = &last.arguments {
                let types: Vec<&Type> = args
                    .args
                    .iter()
                    .filter_map(|a| match a {
                        GenericArgument::Type(t) => Some(t),
                        _ => None,
                    })
                    .collect();
                if let [_, e] = types.as_slice() {
                    return e.span();
                }
            }
        }
    }
    ty.span()
}

/// Statements at the top of the body, before the nest: the rejection
/// converter, and the checks that the return type fits the mode.
pub(crate) fn lets(ctx: &Ctx, layers: &[Layer], policies: &[usize]) -> TokenStream {
    if policies.is_empty() {
        return TokenStream::new();
    }
    let krate = &ctx.krate;
    let ty = &ctx.output.ty;
    let reject = &ctx.reject;
    // The type the user wrote (the future's output for an async block),
    // for spans; `None` when it could not be found.
    let written = value_type(&ctx.output).filter(|t| !matches!(t, Type::Infer(_)));
    let span = written
        .as_ref()
        .map_or_else(proc_macro2::Span::call_site, Spanned::span);
    let rejects = policies.iter().any(|&i| match &layers[i] {
        Layer::Policy(p) => p.kind != Kind::Retry,
        _ => false,
    });
    if ctx.wrapped {
        let check = match &written {
            Some(t) if !clearly_not_result(t) => quote_spanned! {span=>
                #krate::__private::policy::assert_plain_value(
                    (&::core::marker::PhantomData::<#ty>).__cortex_value_kind(),
                );
            },
            _ => TokenStream::new(),
        };
        return quote! {
            #[allow(unused_imports)]
            use #krate::__private::policy::{IsPlainValue as _, IsResultValue as _};
            #check
            let #reject = #krate::__private::policy::wrapped_rejection::<#ty>();
        };
    }
    let span = written.as_ref().map_or(span, error_span);
    if rejects {
        // One check, on the error type: the policies below only need the
        // converter it returns.
        let value = quote_spanned!(span=> ::core::marker::PhantomData::<#ty>);
        quote!(let #reject = #krate::__private::policy::rejection(#value);)
    } else {
        let value = quote_spanned!(span=> ::core::marker::PhantomData::<#ty>);
        quote!(#krate::__private::policy::returns_result(#value);)
    }
}
