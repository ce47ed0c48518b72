//! Data shared by the benches: values shaped like the chatbot's.

use rand::{rngs::StdRng, Rng};

/// Dimension of all-MiniLM-L6-v2, the chatbot's model.
pub const DIM: usize = 384;

/// One `cache:embedding:*` value as the chatbot writes it: JavaScript's
/// `JSON.stringify` of f32 values promoted to f64 (~17 significant digits per
/// float) plus ~2 KB of title and text: about 10 KB.
pub fn chatbot_value(i: usize, rng: &mut StdRng) -> String {
    let mut v = String::with_capacity(10_500);
    v.push_str(&format!(
        r#"{{"title":"Artigo {i}: como usar a maquininha","url":"https://help.example/articles/{i}","text":""#
    ));
    while v.len() < 2_000 {
        v.push_str("Saiba como configurar sua conta e receber pagamentos com seguranca. ");
    }
    v.push_str(r#"","embedding":["#);
    for d in 0..DIM {
        let x: f32 = rng.random_range(-0.2f32..0.2);
        if d > 0 {
            v.push(',');
        }
        // What JSON.stringify prints for a float32 stored in a JS number.
        v.push_str(&format!("{}", f64::from(x)));
    }
    v.push_str("]}");
    v
}

/// A unit vector of [`DIM`] components, each drawn from ±0.2 before scaling.
#[allow(dead_code)] // not every bench that includes this module uses it
pub fn unit_vector(rng: &mut StdRng) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIM).map(|_| rng.random_range(-0.2f32..0.2)).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}
