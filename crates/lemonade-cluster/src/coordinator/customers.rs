//! The coordinator's customers: its directory of them (ids and standing, no personal data),
//! whether an order may name one, and erasure without a race with their orders.

use std::time::Duration;

use lemonade_domain::ShopError;
use lemonade_domain::customer::check_order_customer;
use lemonade_domain::customer::{Customer, Erasure, ErasureUnderWay};
use lemonade_domain::ids::CustomerId;
use lemonade_domain::order::OrderDraft;
use lemonade_store::sql::directory::{self, Standing};
use lemonade_store::sql::sagas;
use tokio::time::Instant;

use super::Coordinator;
use super::read_your_writes::Sees;
use crate::client::CallError;
use crate::rpc::*;

/// Longest an order waits for CRM to check a customer the directory does not know: a sale
/// must not wait out its whole deadline for a service it can do without.
const CUSTOMER_CHECK_MS: u64 = 1_000;
/// How often an erasure looks again whether the customer's orders in flight have finished.
const ERASURE_POLL_MS: u64 = 20;

/// The answer to an order naming a customer the directory does not know while CRM cannot be
/// asked: what a cashier can do about it.
const CUSTOMER_LIST_DOWN: &str = "the customer list is unavailable and this customer is not known here yet: sell without the customer, or try again in a moment";

/// An erasure recorded, not finished: the answer's words, whatever held it up.
const ERASURE_RECORDED: &str =
    "the erasure is recorded and cannot be undone: no new order can name this customer from now on";
const ERASURE_WHEN_CRM_BACK: &str = "their details are removed by themselves as soon as the customer list \
     answers again (it did not answer just now); nothing more needs doing";
const ERASURE_AFTER_ORDERS: &str = "orders of theirs are still being completed, and their details are \
     removed by themselves once those have finished; nothing more needs doing";
const ERASURE_LATER: &str = "their details are removed by themselves shortly; nothing more needs doing";

/// The answer to a read of a customer whose erasure is recorded (the directory says
/// `erasing`) while CRM cannot answer: the coordinator holds no personal data to show, but it
/// knows the erasure is under way (the 202 of the `DELETE` said so, with this `Location`).
const READ_WHILE_ERASING: &str = "this customer's erasure is recorded and under way: no new order can name them, \
     and their details are removed by themselves; the customer list is not answering just now, \
     so their record cannot be shown: try again in a few seconds";
/// The same for a customer the directory knows as erased.
const READ_WHEN_ERASED: &str = "this customer was erased: their details are removed; the customer list is \
     not answering just now, so their anonymised record cannot be shown: try again in a few seconds";

fn under_way(id: &CustomerId, then: &str) -> Erasure {
    Erasure::UnderWay(ErasureUnderWay {
        id: id.clone(),
        detail: format!("{ERASURE_RECORDED}. {}{}", then[..1].to_uppercase(), &then[1..]),
    })
}

impl Coordinator {
    /// Whether an order may name customer `id`: `Some(refusal)` if not. The directory answers
    /// for a customer it knows, without CRM; one it does not know is looked up at CRM, within
    /// [`CUSTOMER_CHECK_MS`], and if CRM cannot say, the answer tells the cashier what to do.
    pub(super) async fn check_customer(
        &self,
        id: &CustomerId,
        deadline: Instant,
    ) -> Result<Option<ShopError>, ShopError> {
        if let Some(standing) = self.standing(id).await? {
            return Ok(check_order_customer(Some(standing)).err().map(ShopError::from));
        }
        let budget = deadline.min(self.deadline(CUSTOMER_CHECK_MS));
        match self
            .inner
            .clients
            .call(&GetCustomer { id: id.clone() }, None, budget)
            .await
        {
            // An active customer is learned when the saga is logged, in that same transaction.
            Ok(c) => {
                let refusal = check_order_customer(Some(c.standing())).err();
                if refusal.is_some() {
                    self.learn(&c).await;
                }
                Ok(refusal.map(ShopError::from))
            }
            Err(CallError::Refused(ShopError::NotFound { .. })) => {
                Ok(check_order_customer(None).err().map(ShopError::from))
            }
            Err(CallError::Refused(e)) => Err(e),
            Err(e) => {
                tracing::warn!(customer = %id, error = ?e, "cannot check a customer the directory does not know");
                Err(ShopError::unavailable(CUSTOMER_LIST_DOWN))
            }
        }
    }

    /// What the directory knows of a customer.
    pub(super) async fn standing(&self, id: &CustomerId) -> Result<Option<Standing>, ShopError> {
        let id = id.clone();
        self.inner.node.lookup(move |db| directory::standing(db, &id)).await
    }

    /// Writes what CRM answered about a customer through to the directory, when it did not
    /// know as much. Best effort: a customer the directory misses is asked at CRM.
    pub(super) async fn learn(&self, customer: &Customer) {
        let standing = customer.standing();
        if self.standing(&customer.id).await.ok().flatten() >= Some(standing) {
            return;
        }
        let id = customer.id.clone();
        if let Err(e) = self
            .inner
            .node
            .write(move |tx| directory::learn(tx, &id, standing))
            .await
        {
            tracing::warn!(customer = %customer.id, error = %e, "could not write a customer to the directory");
        }
    }

    /// A refused customer, together with what stock finds wrong in the order's products, so
    /// that the client hears of both in one answer. Best effort: stock's errors are left out
    /// when it cannot answer within [`BEST_EFFORT_MS`].
    pub(super) async fn with_product_errors(&self, refusal: ShopError, draft: &OrderDraft) -> ShopError {
        let ShopError::ValidationFailed { mut errors } = refusal else {
            return refusal;
        };
        let products = draft
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| (i, l.product_id.clone()))
            .collect();
        if let Some(more) = self.extra(CheckOrderProducts { products }).await {
            errors.extend(more);
        }
        ShopError::ValidationFailed { errors }
    }

    /// Erases a customer without a race with their orders:
    /// 1. the directory marks them `erasing`, durably: from then on no order can name them
    ///    (an order checks the directory, and checks it again in the transaction that logs
    ///    its saga);
    /// 2. it waits, at most as long as an order may take (`order_deadline_ms`), until no
    ///    saga naming them is unfinished;
    /// 3. CRM anonymises them (forfeiting their points; an award that reaches CRM later
    ///    changes nothing), and the directory marks them `erased`.
    ///
    /// Once step 1 is done the erasure is recorded for good: if step 2 or 3 cannot be done
    /// now (orders still in flight, CRM not answering), the answer is
    /// [`Erasure::UnderWay`] (202) saying so, never an error, and the sweeper finishes it.
    pub(super) async fn erase(&self, id: CustomerId) -> Result<Erasure, ShopError> {
        if self.standing(&id).await?.is_none() {
            // Unknown here: CRM says whether they exist (404 stays 404, nothing is marked).
            self.ask_customer(id.clone()).await?;
        }
        let marked = id.clone();
        self.inner
            .node
            .write(move |tx| directory::learn(tx, &marked, Standing::Erasing))
            .await?;
        // From here on the erasure is recorded: whatever stops it now, the sweeper finishes
        // it, and the answer says so rather than fail.
        match self
            .orders_in_flight_finish(&id, self.inner.config.order_deadline_ms)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Ok(under_way(&id, ERASURE_AFTER_ORDERS)),
            Err(e) => {
                tracing::warn!(customer = %id, error = %e, "cannot see the orders in flight of a customer being erased");
                return Ok(under_way(&id, ERASURE_LATER));
            }
        }
        // The erasure is recorded, so the answer is known: CRM gets a short wait for it.
        let deadline = self.deadline(self.inner.config.call_deadline_ms);
        match self.unless_known(self.finish_erasure(&id, deadline)).await {
            Some(Ok(erased)) => Ok(Erasure::Done(erased)),
            Some(Err(refusal)) => Err(refusal),
            None => {
                tracing::warn!(customer = %id, "an erasure is recorded; the sweeper finishes it once CRM answers");
                Ok(under_way(&id, ERASURE_WHEN_CRM_BACK))
            }
        }
    }

    /// Waits, at most `wait_ms`, until no saga naming `customer` is unfinished. Returns
    /// whether none is.
    pub(super) async fn orders_in_flight_finish(&self, customer: &CustomerId, wait_ms: u64) -> Result<bool, ShopError> {
        let until = self.deadline(wait_ms);
        loop {
            let id = customer.clone();
            let unfinished = self
                .inner
                .node
                .lookup(move |db| sagas::unfinished_of_customer(db, &id))
                .await?;
            if unfinished == 0 {
                return Ok(true);
            }
            if Instant::now() >= until {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(ERASURE_POLL_MS)).await;
        }
    }

    /// The last step of an erasure, once no order of the customer is in flight: CRM
    /// anonymises them, then the directory records it. The step key is the customer's, so
    /// however many times this is asked (by clients retrying, by the sweeper), CRM erases once.
    pub(super) async fn finish_erasure(&self, customer: &CustomerId, deadline: Instant) -> Result<Customer, CallError> {
        // After the relay delivered their orders' points (at most a bounded wait): the points
        // the erasure forfeits include them. One that comes later changes nothing.
        let clients = &self.inner.clients;
        self.inner
            .written
            .caught_up(clients, Service::Crm, Sees::Customer(customer))
            .await;
        let erase = AnonymiseCustomer { id: customer.clone() };
        let erased = clients
            .call(&erase, Some(format!("erase:{customer}")), deadline)
            .await?;
        // Left `erasing` if this write fails: the sweeper asks CRM again, which changes nothing.
        self.learn(&erased).await;
        Ok(erased)
    }

    /// Customer `id` as CRM has them. For a customer the directory knows as `erasing` or
    /// `erased` (the `Location` of an erasure's 202 is read while CRM does not answer), the
    /// coordinator has a truthful answer of its own: CRM gets [`Coordinator::unless_known`]'s
    /// short wait, and if it cannot answer in it, the answer is 503 (`Unavailable`, with
    /// `Retry-After`) saying the erasure is under way (or done) and to try again shortly;
    /// never the customer, whose details the coordinator does not hold. For any other customer
    /// the read waits for CRM its whole deadline, as a read does.
    pub(super) async fn read_customer(&self, id: CustomerId) -> Result<Customer, ShopError> {
        let known = match self.standing(&id).await {
            Ok(Some(Standing::Erasing)) => READ_WHILE_ERASING,
            Ok(Some(Standing::Erased)) => READ_WHEN_ERASED,
            Ok(Some(Standing::Active) | None) => return self.ask_customer(id).await,
            Err(e) => {
                tracing::warn!(customer = %id, error = %e, "cannot read the directory; asking CRM alone");
                return self.ask_customer(id).await;
            }
        };
        let read = self.asking(Sees::Customer(&id), GetCustomer { id: id.clone() });
        match self.unless_known(read).await {
            Some(Ok(customer)) => {
                self.learn(&customer).await;
                Ok(customer)
            }
            Some(Err(refusal)) => Err(refusal),
            None => Err(ShopError::unavailable(known)),
        }
    }

    /// Customer `id` from CRM, with the call's whole deadline, written through to the directory.
    async fn ask_customer(&self, id: CustomerId) -> Result<Customer, ShopError> {
        let customer = self.ask_about(&id, GetCustomer { id: id.clone() }).await?;
        self.learn(&customer).await;
        Ok(customer)
    }

    /// Whether customer `id` exists, from the directory when it knows them, else from CRM.
    pub(super) async fn require_customer(&self, id: &CustomerId) -> Result<(), ShopError> {
        if self.standing(id).await?.is_some() {
            return Ok(());
        }
        self.ask_customer(id.clone()).await?;
        Ok(())
    }
}
