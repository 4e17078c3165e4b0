//! Our sealed boxes are libsodium's: a box PyNaCl made opens with our code, and a box our code
//! makes opens when taken apart by hand the way `crypto_box_seal_open` does.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use blake2::digest::consts::U24;
use blake2::{Blake2b, Digest};
use crypto_box::aead::Aead;
use crypto_box::{SalsaBox, SecretKey};
use mgraph_deploy_client::PublicKey;
use mgraph_deploy_emulator::KeyPair;
use serde_json::Value;

fn vector() -> Value {
    serde_json::from_str(include_str!("data/pynacl_sealed_box.json")).unwrap()
}

#[test]
fn a_sealed_box_made_by_pynacl_opens_with_our_code() {
    let v = vector();
    let keys = KeyPair::from_private_hex(v["private_key_hex"].as_str().unwrap()).unwrap();
    assert_eq!(keys.public_hex(), v["public_key_hex"]);
    assert_eq!(
        keys.open(v["sealed_base64"].as_str().unwrap()).unwrap(),
        v["plaintext"]
    );
}

#[test]
fn our_sealed_box_opens_by_libsodiums_construction_of_ephemeral_key_mac_and_blake2b_nonce() {
    let v = vector();
    let secret_bytes: [u8; 32] = hex::decode(v["private_key_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let secret = SecretKey::from_bytes(secret_bytes);
    let public = PublicKey::from_hex(v["public_key_hex"].as_str().unwrap()).unwrap();
    let plaintext = "our value, ünïcode and\nnewlines";

    let raw = STANDARD
        .decode(public.seal(plaintext.as_bytes()).expose())
        .unwrap();
    assert_eq!(raw.len(), plaintext.len() + 48);
    // crypto_box_seal: ephemeral_pk (32) ‖ crypto_box_easy(m, nonce, recipient_pk, ephemeral_sk),
    // nonce = BLAKE2b-192(ephemeral_pk ‖ recipient_pk).
    let (ephemeral, boxed) = raw.split_at(32);
    let mut hasher = Blake2b::<U24>::new();
    hasher.update(ephemeral);
    hasher.update(public.as_bytes());
    let nonce = hasher.finalize();
    let ephemeral = crypto_box::PublicKey::from_slice(ephemeral).unwrap();
    let opened = SalsaBox::new(&ephemeral, &secret)
        .decrypt(&nonce, boxed)
        .expect("libsodium's construction opens our box");
    assert_eq!(opened, plaintext.as_bytes());
}

#[test]
fn a_box_sealed_to_one_key_does_not_open_with_another() {
    let v = vector();
    let other = KeyPair::generate();
    assert!(other.open(v["sealed_base64"].as_str().unwrap()).is_err());
}
