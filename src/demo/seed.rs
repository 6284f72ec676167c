//! Deterministic sample data. Same seed, same rows: gate's baselines taken against
//! one demo run stay comparable with the next.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rusqlite::{Connection, params};

use super::SeedStats;

const CATEGORIES: usize = 20;
const PRODUCTS: usize = 2_000;
const USERS: usize = 500;
/// Orders per user are drawn from this range: ~50 on average, so ~25,000 in all.
/// Enough per user that the N+1 regression costs visibly more than one join.
const ORDERS_PER_USER: std::ops::RangeInclusive<usize> = 30..=70;
const ITEMS_PER_ORDER: std::ops::RangeInclusive<usize> = 3..=5;
const REVIEWS_PER_PRODUCT: std::ops::RangeInclusive<usize> = 0..=6;

/// All seeded timestamps fall in the year before this instant (2023-11-14), so
/// orders created through the API are always the newest, and the data does not
/// depend on when the demo was started.
pub(super) const EPOCH: i64 = 1_700_000_000;
const YEAR_SECS: i64 = 365 * 24 * 3600;

const CATEGORY_NAMES: [&str; CATEGORIES] = [
    "Kitchen",
    "Garden",
    "Office",
    "Outdoor",
    "Lighting",
    "Audio",
    "Storage",
    "Bath",
    "Fitness",
    "Travel",
    "Toys",
    "Tools",
    "Pets",
    "Bedding",
    "Decor",
    "Stationery",
    "Cycling",
    "Camping",
    "Baby",
    "Gaming",
];
const ADJECTIVES: &[&str] = &[
    "Ergonomic",
    "Rustic",
    "Sleek",
    "Compact",
    "Heavy-Duty",
    "Portable",
    "Vintage",
    "Modern",
    "Handcrafted",
    "Foldable",
    "Wireless",
    "Insulated",
    "Lightweight",
    "Premium",
    "Classic",
    "Smart",
];
const MATERIALS: &[&str] = &[
    "Steel",
    "Oak",
    "Bamboo",
    "Cotton",
    "Granite",
    "Copper",
    "Leather",
    "Wool",
    "Glass",
    "Ceramic",
    "Aluminium",
    "Linen",
];
const NOUNS: &[&str] = &[
    "Lamp", "Chair", "Kettle", "Backpack", "Speaker", "Shelf", "Bottle", "Planter", "Desk",
    "Blanket", "Mug", "Toolbox", "Tent", "Helmet", "Clock", "Basket", "Notebook", "Pan", "Stool",
    "Mat", "Lantern", "Crate", "Towel", "Bowl",
];
const SELLING_POINTS: &[&str] = &[
    "Built to last through daily use",
    "Easy to clean and quick to assemble",
    "Designed with small spaces in mind",
    "A customer favourite for gifting",
    "Tested for comfort over long sessions",
    "Made from responsibly sourced materials",
    "Backed by a two-year warranty",
    "Pairs well with the rest of the range",
    "Ships flat-packed in recyclable packaging",
    "Finished by hand in small batches",
];
const FIRST_NAMES: &[&str] = &[
    "Ada", "Grace", "Alan", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances", "Edsger",
    "Radia", "John", "Sophie", "Tim", "Hedy", "Niklaus", "Karen", "Donald", "Joan", "Guido",
    "Anita", "Bjarne", "Shafi", "Leslie", "Jean", "Robin", "Mary", "Vint", "Adele", "Ivan",
];
const LAST_NAMES: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Dijkstra",
    "Perlman",
    "McCarthy",
    "Wilson",
    "Berners-Lee",
    "Lamarr",
    "Wirth",
    "Jones",
    "Knuth",
    "Clarke",
    "Rossum",
    "Borg",
    "Stroustrup",
    "Goldwasser",
    "Lamport",
    "Sammet",
    "Milner",
    "Keller",
    "Cerf",
    "Goldberg",
    "Sutherland",
];
const REVIEW_BODIES: &[&str] = &[
    "Exactly as described, would buy again.",
    "Arrived quickly and works well.",
    "Decent value for the price.",
    "Smaller than I expected, but sturdy.",
    "Stopped working after a month.",
    "My second one; the first is still going strong.",
    "Instructions were confusing, product is fine.",
    "Looks great in the living room.",
    "Not worth it at full price.",
    "Solid build quality, no complaints.",
    "Colour differs slightly from the photos.",
    "Bought as a gift and they loved it.",
];
const STATUSES: &[&str] = &[
    "delivered",
    "delivered",
    "delivered",
    "shipped",
    "cancelled",
];

/// Insert the sample data. Runs inside the caller's transaction: one commit for
/// ~130k rows is what keeps seeding well under a second.
pub(super) fn seed(conn: &Connection, seed: u64) -> rusqlite::Result<SeedStats> {
    let mut rng = StdRng::seed_from_u64(seed);

    {
        let mut stmt = conn.prepare("INSERT INTO categories (id, name) VALUES (?1, ?2)")?;
        for (i, name) in CATEGORY_NAMES.iter().enumerate() {
            stmt.execute(params![id(i), name])?;
        }
    }

    let mut prices = Vec::with_capacity(PRODUCTS);
    {
        let mut stmt = conn.prepare(
            "INSERT INTO products (id, name, description, price_cents, category_id, stock)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for i in 0..PRODUCTS {
            let adjective = pick(&mut rng, ADJECTIVES);
            let material = pick(&mut rng, MATERIALS);
            let noun = pick(&mut rng, NOUNS);
            let name = format!("{adjective} {material} {noun}");
            let description = format!(
                "A {} {} {} made of {}. {}. {}.",
                adjective.to_lowercase(),
                material.to_lowercase(),
                noun.to_lowercase(),
                material.to_lowercase(),
                pick(&mut rng, SELLING_POINTS),
                pick(&mut rng, SELLING_POINTS),
            );
            // Log-uniform between $2 and $500: many cheap items, a few expensive ones,
            // ending in .99 like real price tags.
            let dollars = (rng.random_range(2f64.ln()..500f64.ln())).exp().floor() as i64;
            let price_cents = dollars * 100 + 99;
            let category = rng.random_range(0..CATEGORIES);
            let stock: i64 = rng.random_range(0..=500);
            stmt.execute(params![
                id(i),
                name,
                description,
                price_cents,
                id(category),
                stock
            ])?;
            prices.push(price_cents);
        }
    }

    {
        let mut stmt = conn.prepare("INSERT INTO users (id, name, email) VALUES (?1, ?2, ?3)")?;
        for i in 0..USERS {
            let first = pick(&mut rng, FIRST_NAMES);
            let last = pick(&mut rng, LAST_NAMES);
            // The id keeps emails unique however the names collide.
            let email = format!(
                "{}.{}.{}@example.com",
                first.to_lowercase(),
                last.to_lowercase(),
                id(i)
            );
            stmt.execute(params![id(i), format!("{first} {last}"), email])?;
        }
    }

    let (mut orders, mut line_items) = (0u64, 0u64);
    {
        let mut order_stmt = conn.prepare(
            "INSERT INTO orders (id, user_id, status, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut item_stmt = conn.prepare(
            "INSERT INTO line_items (id, order_id, product_id, qty, unit_price_cents)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for user in 0..USERS {
            for _ in 0..rng.random_range(ORDERS_PER_USER) {
                orders += 1;
                let order_id = orders as i64;
                let created_at = EPOCH - rng.random_range(0..YEAR_SECS);
                order_stmt.execute(params![
                    order_id,
                    id(user),
                    pick(&mut rng, STATUSES),
                    created_at
                ])?;
                for _ in 0..rng.random_range(ITEMS_PER_ORDER) {
                    line_items += 1;
                    let product = rng.random_range(0..PRODUCTS);
                    // Mostly single units; now and then a few.
                    let qty: i64 = if rng.random_bool(0.8) {
                        1
                    } else {
                        rng.random_range(2..=5)
                    };
                    // Some orders were placed during a sale, so past prices differ.
                    let unit_price = if rng.random_bool(0.85) {
                        prices[product]
                    } else {
                        prices[product] * rng.random_range(70..100) / 100
                    };
                    item_stmt.execute(params![
                        line_items as i64,
                        order_id,
                        id(product),
                        qty,
                        unit_price
                    ])?;
                }
            }
        }
    }

    {
        let mut stmt = conn.prepare(
            "INSERT INTO reviews (product_id, user_id, rating, body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for product in 0..PRODUCTS {
            for _ in 0..rng.random_range(REVIEWS_PER_PRODUCT) {
                // Skewed positive, as review ratings are in practice.
                let rating: i64 = *[1, 2, 3, 4, 4, 5, 5, 5]
                    .choose(&mut rng)
                    .expect("rating table is not empty");
                stmt.execute(params![
                    id(product),
                    id(rng.random_range(0..USERS)),
                    rating,
                    pick(&mut rng, REVIEW_BODIES),
                    EPOCH - rng.random_range(0..YEAR_SECS)
                ])?;
            }
        }
    }

    Ok(SeedStats {
        products: PRODUCTS as u64,
        users: USERS as u64,
        orders,
        line_items,
        seed_time: Duration::ZERO,
    })
}

/// Row ids start at 1, as they would with AUTOINCREMENT-style ids.
fn id(index: usize) -> i64 {
    index as i64 + 1
}

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from.choose(rng).expect("word lists are not empty")
}
