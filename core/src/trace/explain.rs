//! `explain(run)`: for each action, what led to it, what it relied on, what it passed and cost.
