//! The atomics and lock the lock-free parts of the policies are written
//! against. The program uses the standard library's; the model checks in
//! this crate's tests run the same code on loom's, which explore every
//! interleaving of the threads that use them.

use std::sync::atomic::{self, Ordering};

/// One atomic integer.
pub(crate) trait Atom<T: Copy>: Send + Sync {
    fn new(v: T) -> Self;
    fn load(&self, order: Ordering) -> T;
    fn store(&self, v: T, order: Ordering);
    fn swap(&self, v: T, order: Ordering) -> T;
    fn fetch_add(&self, v: T, order: Ordering) -> T;
    fn fetch_sub(&self, v: T, order: Ordering) -> T;
    fn compare_exchange(
        &self,
        current: T,
        new: T,
        success: Ordering,
        failure: Ordering,
    ) -> Result<T, T>;

    /// `compare_exchange` in a loop until `f` gives up (`None`) or wins.
    fn fetch_update(
        &self,
        set: Ordering,
        fetch: Ordering,
        mut f: impl FnMut(T) -> Option<T>,
    ) -> Result<T, T> {
        let mut prev = self.load(fetch);
        while let Some(next) = f(prev) {
            match self.compare_exchange(prev, next, set, fetch) {
                Ok(v) => return Ok(v),
                Err(now) => prev = now,
            }
        }
        Err(prev)
    }
}

/// A lock around nothing: what it guards is atomics, it only orders the
/// writers.
pub(crate) trait Lock: Send + Sync {
    type Guard<'a>
    where
        Self: 'a;
    fn new() -> Self;
    fn lock(&self) -> Self::Guard<'_>;
}

/// A family of atomics and a lock.
pub(crate) trait Family: 'static + Send + Sync {
    type U8: Atom<u8>;
    type U64: Atom<u64>;
    type I64: Atom<i64>;
    type Lock: Lock;
}

/// The standard library's.
pub(crate) struct Std;

impl Family for Std {
    type U8 = atomic::AtomicU8;
    type U64 = atomic::AtomicU64;
    type I64 = atomic::AtomicI64;
    type Lock = parking_lot::Mutex<()>;
}

/// `Atom` for an atomic type with the standard library's methods.
macro_rules! atom {
    ($($atomic:ty: $t:ty),*) => {$(
        impl Atom<$t> for $atomic {
            #[inline(always)]
            fn new(v: $t) -> Self {
                <$atomic>::new(v)
            }
            #[inline(always)]
            fn load(&self, order: Ordering) -> $t {
                <$atomic>::load(self, order)
            }
            #[inline(always)]
            fn store(&self, v: $t, order: Ordering) {
                <$atomic>::store(self, v, order)
            }
            #[inline(always)]
            fn swap(&self, v: $t, order: Ordering) -> $t {
                <$atomic>::swap(self, v, order)
            }
            #[inline(always)]
            fn fetch_add(&self, v: $t, order: Ordering) -> $t {
                <$atomic>::fetch_add(self, v, order)
            }
            #[inline(always)]
            fn fetch_sub(&self, v: $t, order: Ordering) -> $t {
                <$atomic>::fetch_sub(self, v, order)
            }
            #[inline(always)]
            fn compare_exchange(
                &self,
                current: $t,
                new: $t,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$t, $t> {
                <$atomic>::compare_exchange(self, current, new, success, failure)
            }
        }
    )*};
}

atom!(atomic::AtomicU8: u8, atomic::AtomicU64: u64, atomic::AtomicI64: i64);

impl Lock for parking_lot::Mutex<()> {
    type Guard<'a> = parking_lot::MutexGuard<'a, ()>;
    fn new() -> Self {
        parking_lot::Mutex::new(())
    }
    fn lock(&self) -> Self::Guard<'_> {
        parking_lot::Mutex::lock(self)
    }
}

/// loom's atomics and mutex, for the model checks.
#[cfg(test)]
pub(crate) mod model {
    use std::sync::atomic::Ordering;

    use super::{Atom, Lock};

    pub(crate) struct Loom;

    impl super::Family for Loom {
        type U8 = loom::sync::atomic::AtomicU8;
        type U64 = loom::sync::atomic::AtomicU64;
        type I64 = loom::sync::atomic::AtomicI64;
        type Lock = loom::sync::Mutex<()>;
    }

    atom!(
        loom::sync::atomic::AtomicU8: u8,
        loom::sync::atomic::AtomicU64: u64,
        loom::sync::atomic::AtomicI64: i64
    );

    impl Lock for loom::sync::Mutex<()> {
        type Guard<'a> = loom::sync::MutexGuard<'a, ()>;
        fn new() -> Self {
            loom::sync::Mutex::new(())
        }
        fn lock(&self) -> Self::Guard<'_> {
            loom::sync::Mutex::lock(self).expect("no poisoning in a model")
        }
    }
}
