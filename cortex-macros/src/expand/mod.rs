//! Code generation, one file per macro; this file holds what they share.

pub(crate) mod counted;
pub(crate) mod timed;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Ident, LitStr};

/// On a bad attribute: the user's item unchanged, plus the error, so only
/// that one error shows and the IDE still sees the function.
pub(crate) fn with_error(item: TokenStream, err: &syn::Error) -> TokenStream {
    let error = err.to_compile_error();
    quote!(#item #error)
}

/// A local name the user's code cannot see or clash with.
pub(crate) fn hidden(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// `FnInfo { .. }` for a site.
pub(crate) fn fn_info(
    krate: &TokenStream,
    metric: &str,
    help: &Option<LitStr>,
    function: &str,
    labels: &[(String, LitStr)],
) -> TokenStream {
    let help = help.as_ref().map(LitStr::value).unwrap_or_default();
    let label_pairs = labels.iter().map(|(k, v)| quote!((#k, #v)));
    quote! {
        #krate::__private::FnInfo {
            metric: #metric,
            help: #help,
            function: #function,
            module: ::core::module_path!(),
            labels: &[#(#label_pairs),*],
        }
    }
}

/// The linker entry that makes the site's series exist before the first call.
pub(crate) fn registration(krate: &TokenStream, entry: &Ident, site: TokenStream) -> TokenStream {
    quote! {
        #[#krate::__private::linkme::distributed_slice(#krate::__private::SITES)]
        #[linkme(crate = #krate::__private::linkme)]
        static #entry: #krate::__private::Site = #site;
    }
}
