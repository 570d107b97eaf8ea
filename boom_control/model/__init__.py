"""The world model: pure network heads (encoder, latent dynamics, reward, Q ensemble,
policy prior), their layers and tensor ops, and :class:`ModelConfig`."""
