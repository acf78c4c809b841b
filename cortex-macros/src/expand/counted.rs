//! `#[counted]`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse_quote;

use super::{fn_info, hidden, registration, with_error};
use crate::args::{self, Args};
use crate::item::{self, Body};

const KEYS: &[&str] = &["name", "help", "labels", "crate"];
const DEFAULT_NAME: &str = "cortex_function_calls_total";

pub(crate) fn expand(attr: TokenStream, tokens: TokenStream) -> TokenStream {
    match try_expand(attr, tokens.clone()) {
        Ok(out) => out,
        Err(err) => with_error(tokens, &err),
    }
}

fn try_expand(attr: TokenStream, tokens: TokenStream) -> syn::Result<TokenStream> {
    let mut args = Args::parse(attr, "counted", KEYS)?;
    let mut item = item::parse(tokens, "counted")?;
    let name = match args.string("name")? {
        Some(lit) => args::metric_name(&lit, "_total")?,
        None => DEFAULT_NAME.to_owned(),
    };
    let help = args.string("help")?;
    let mut reserved: Vec<&str> = cortex_rules::FUNCTION_LABELS.to_vec();
    reserved.extend(cortex_rules::RESERVED_LABELS);
    let labels = args.labels(&reserved)?;
    let krate = args.krate()?;

    let function = item::function_name(&item);
    let info = fn_info(&krate, &name, &help, &function, &labels);
    let site = hidden("__CORTEX_COUNTED_SITE");
    let entry = hidden("__CORTEX_COUNTED_ENTRY");
    let registration = registration(
        &krate,
        &entry,
        quote!(#krate::__private::Site::Counted(&#site)),
    );
    let statics = quote! {
        static #site: #krate::__private::CountedSite = #krate::__private::CountedSite::new(#info);
        #registration
    };
    let call = hidden("__cortex_counted");
    let out = hidden("__cortex_out");
    let finish = quote! {
        {
            #[allow(unused_imports)]
            use #krate::__private::{IsResult as _, NotResult as _};
            #call.finish((&#out).__cortex_outcome());
        }
    };

    match item::body_kind(&item) {
        Body::Sync => {
            let block = &item.block;
            let output = item::nameable_output(&item).unwrap_or_else(|| quote!(_));
            item.block = parse_quote!({
                #statics
                let #call = #krate::__private::CountedCall::start(&#site);
                #[allow(clippy::redundant_closure_call, unused_mut)]
                let #out = #krate::__private::call_once::<#output, _>(move || #block);
                #finish
                #out
            });
        }
        Body::Async => {
            let block = &item.block;
            let output = item::nameable_output(&item).unwrap_or_else(|| quote!(_));
            item.block = parse_quote!({
                #statics
                let #call = #krate::__private::CountedCall::start(&#site);
                let #out = #krate::__private::typed_future::<#output, _>(async move #block).await;
                #finish
                #out
            });
        }
        Body::AsyncTrait(index) => {
            let inner = item::async_trait_block_mut(&mut item.block, index).ok_or_else(|| {
                syn::Error::new_spanned(&item.sig, "unexpected #[async_trait] body")
            })?;
            let block = inner.clone();
            *inner = parse_quote!({
                let #call = #krate::__private::CountedCall::start(&#site);
                let #out = async move #block.await;
                #finish
                #out
            });
            item.block
                .stmts
                .insert(0, syn::Stmt::Item(syn::Item::Verbatim(statics)));
        }
    }
    Ok(quote!(#item))
}
