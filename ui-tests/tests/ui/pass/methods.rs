struct Account {
    balance: u64,
}

impl Account {
    #[cortex::counted]
    fn open() -> Self {
        Account { balance: 0 }
    }

    #[cortex::counted]
    #[cortex::timed]
    fn balance(&self) -> u64 {
        self.balance
    }

    #[cortex::counted]
    fn deposit(&mut self, amount: u64) -> &mut Self {
        self.balance += amount;
        self
    }

    #[cortex::timed]
    fn close(self) -> u64 {
        self.balance
    }

    #[cortex::counted]
    async fn audit(&mut self) -> &u64 {
        &self.balance
    }

    #[cortex::counted]
    fn boxed(self: Box<Self>) -> u64 {
        self.balance
    }
}

fn main() {
    let mut a = Account::open();
    a.deposit(5).deposit(1);
    assert_eq!(a.balance(), 6);
    assert_eq!(a.close(), 6);
    assert_eq!(Box::new(Account::open()).boxed(), 0);
}
