//! Writes a deterministic, self-consistent example block with a real state witness.
//!
//! From a seed it builds `N` accounts (plus a few contracts with code), the real
//! Merkle-Patricia state trie over them (alloy-trie's `HashBuilder`, every node
//! retained), a parent header whose stateRoot is the trie root, and a block on top.
//! The result is written in Proofline's canonical witness format and read back with
//! the same parser the prover uses.
//!
//! ```text
//! cargo run --release -p proofline-keccak --bin make-example-block -- \
//!     --accounts 600 --seed 1 --out examples/example-block.json
//! ```

use std::process::ExitCode;

use alloy_consensus::{EMPTY_OMMER_ROOT_HASH, EMPTY_ROOT_HASH, Header, TrieAccount};
use alloy_primitives::{Address, B64, B256, Bloom, Bytes, U256, b256, keccak256};
use alloy_trie::{HashBuilder, Nibbles, proof::ProofRetainer};
use proofline_keccak::witness::{BlockWitness, WitnessFormat, keccak_permutations, parse_block_witness};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

/// sha256 of nothing: the requests hash of a block without EIP-7685 requests.
const EMPTY_REQUESTS_HASH: B256 = b256!("0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
/// How many of the accounts are contracts with code.
const CONTRACTS: usize = 3;

const USAGE: &str = "usage: make-example-block --accounts N --seed S --out FILE";

struct Args {
    accounts: usize,
    seed: u64,
    out: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut accounts, mut seed, mut out) = (None, None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--accounts" => accounts = Some(value()?.parse().map_err(|e| format!("--accounts: {e}"))?),
            "--seed" => seed = Some(value()?.parse().map_err(|e| format!("--seed: {e}"))?),
            "--out" => out = Some(value()?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let accounts: usize = accounts.ok_or("--accounts is required")?;
    if accounts <= CONTRACTS {
        return Err(format!("--accounts must be more than {CONTRACTS}"));
    }
    Ok(Args { accounts, seed: seed.ok_or("--seed is required")?, out: out.ok_or("--out is required")? })
}

fn random_b256(rng: &mut StdRng) -> B256 {
    B256::from(rng.random::<[u8; 32]>())
}

/// Plausible EVM bytecode: the Solidity prologue, then seeded filler.
fn contract_code(rng: &mut StdRng) -> Vec<u8> {
    let len = rng.random_range(600..2400);
    let mut code = vec![0x60, 0x80, 0x60, 0x40, 0x52]; // PUSH1 0x80 PUSH1 0x40 MSTORE
    code.resize(len, 0);
    rng.fill_bytes(&mut code[5..]);
    code
}

/// The accounts and codes of the parent's state.
fn accounts(rng: &mut StdRng, n: usize) -> (Vec<(Address, TrieAccount)>, Vec<Vec<u8>>) {
    let codes: Vec<Vec<u8>> = (0..CONTRACTS).map(|_| contract_code(rng)).collect();
    let accounts = (0..n)
        .map(|i| {
            let address = Address::from(rng.random::<[u8; 20]>());
            let mut account = TrieAccount {
                nonce: rng.random_range(0..5000),
                balance: U256::from(rng.random_range(0..100_000_000_000_000_000_000u128)),
                storage_root: EMPTY_ROOT_HASH,
                code_hash: alloy_primitives::KECCAK256_EMPTY,
            };
            if let Some(code) = codes.get(i) {
                account.nonce = 1;
                account.code_hash = keccak256(code);
            }
            (address, account)
        })
        .collect();
    (accounts, codes)
}

/// The state trie over `accounts`: its root and every node (RLP), in path order.
fn state_trie(accounts: &[(Address, TrieAccount)]) -> (B256, Vec<Vec<u8>>) {
    let mut leaves: Vec<(Nibbles, Vec<u8>)> = accounts
        .iter()
        .map(|(address, account)| (Nibbles::unpack(keccak256(address)), alloy_rlp::encode(account)))
        .collect();
    leaves.sort_by_key(|(key, _)| *key);
    // Retaining the proofs of every key retains every node of the trie.
    let retainer = ProofRetainer::new(leaves.iter().map(|(key, _)| *key).collect());
    let mut builder = HashBuilder::default().with_proof_retainer(retainer);
    for (key, value) in &leaves {
        builder.add_leaf(*key, value);
    }
    let root = builder.root();
    let nodes = builder
        .take_proof_nodes()
        .nodes_sorted()
        .into_iter()
        .map(|(_, node)| node.to_vec())
        // Nodes under 32 bytes are inlined in their parent, never stored on their own.
        .filter(|node| node.len() >= 32)
        .collect();
    (root, nodes)
}

fn parent_header(rng: &mut StdRng, state_root: B256) -> Header {
    let mut bloom = [0u8; 256];
    for _ in 0..40 {
        bloom[rng.random_range(0..256)] |= 1 << rng.random_range(0..8);
    }
    Header {
        parent_hash: random_b256(rng),
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: Address::from(rng.random::<[u8; 20]>()),
        state_root,
        transactions_root: random_b256(rng),
        receipts_root: random_b256(rng),
        logs_bloom: Bloom::from(bloom),
        difficulty: U256::ZERO,
        number: 22_000_000 + rng.random_range(0..1_000_000),
        gas_limit: 36_000_000,
        gas_used: rng.random_range(8_000_000..30_000_000),
        timestamp: 1_750_000_000 + rng.random_range(0..10_000_000),
        extra_data: Bytes::from_static(b"proofline example"),
        mix_hash: random_b256(rng),
        nonce: B64::ZERO,
        base_fee_per_gas: Some(rng.random_range(500_000_000..20_000_000_000)),
        withdrawals_root: Some(random_b256(rng)),
        blob_gas_used: Some(131_072 * rng.random_range(0..7)),
        excess_blob_gas: Some(131_072 * rng.random_range(0..40)),
        parent_beacon_block_root: Some(random_b256(rng)),
        requests_hash: Some(EMPTY_REQUESTS_HASH),
    }
}

/// An empty block on top of `parent` (no transactions, no withdrawals).
fn block_header(rng: &mut StdRng, parent: &Header, parent_hash: B256) -> Header {
    Header {
        parent_hash,
        beneficiary: Address::from(rng.random::<[u8; 20]>()),
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        logs_bloom: Bloom::ZERO,
        number: parent.number + 1,
        gas_used: 0,
        timestamp: parent.timestamp + 12,
        mix_hash: random_b256(rng),
        withdrawals_root: Some(EMPTY_ROOT_HASH),
        blob_gas_used: Some(0),
        parent_beacon_block_root: Some(random_b256(rng)),
        ..parent.clone()
    }
}

fn generate(n: usize, seed: u64) -> BlockWitness {
    let mut rng = StdRng::seed_from_u64(seed);
    let (accounts, codes) = accounts(&mut rng, n);
    let (state_root, state) = state_trie(&accounts);
    let parent = parent_header(&mut rng, state_root);
    let parent_rlp = alloy_rlp::encode(&parent);
    let block = block_header(&mut rng, &parent, keccak256(&parent_rlp));
    let header_rlp = alloy_rlp::encode(&block);
    BlockWitness {
        format: WitnessFormat::Canonical,
        number: block.number,
        hash: keccak256(&header_rlp),
        header_rlp,
        parent_hash: block.parent_hash,
        parent_state_root: state_root,
        state,
        codes,
        // debug_executionWitness lists the touched accounts' addresses as keys.
        keys: accounts.iter().map(|(a, _)| a.to_vec()).collect(),
        headers: vec![parent_rlp],
        prev_hashes: Vec::new(),
    }
}

fn perms(items: &[Vec<u8>]) -> usize {
    items.iter().map(|i| keccak_permutations(i.len())).sum()
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("make-example-block: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let witness = generate(args.accounts, args.seed);
    let json = witness.to_canonical_json();
    // Read it back exactly as the prover will.
    match parse_block_witness(json.as_bytes()) {
        Ok(back) if back == witness => {}
        Ok(_) => panic!("canonical JSON did not round-trip"),
        Err(e) => panic!("generated witness does not validate: {e}"),
    }
    if let Err(e) = std::fs::write(&args.out, &json) {
        eprintln!("make-example-block: writing {}: {e}", args.out);
        return ExitCode::FAILURE;
    }
    println!("block #{} {} -> {} ({} bytes)", witness.number, witness.hash, args.out, json.len());
    println!(
        "items: header 1, headers {}, state nodes {}, codes {}, keys {}",
        witness.headers.len(),
        witness.state.len(),
        witness.codes.len(),
        witness.keys.len()
    );
    println!(
        "keccak-f permutations: {} (header {}, headers {}, state {}, codes {}, keys {})",
        witness.permutation_count(),
        keccak_permutations(witness.header_rlp.len()),
        perms(&witness.headers),
        perms(&witness.state),
        perms(&witness.codes),
        perms(&witness.keys)
    );
    ExitCode::SUCCESS
}
