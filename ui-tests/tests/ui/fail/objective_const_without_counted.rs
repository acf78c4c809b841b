const CHECKOUT: cortex::slo::Objective = cortex::slo::Objective::new("checkout").success_rate(99.9);

#[cortex::objective(objective = CHECKOUT)]
#[cortex::timed]
fn charge() {}

fn main() {}
