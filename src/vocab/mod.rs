//! Shared vocabularies: label sets that data readers, heads, training and reports all name.
//! A leaf: it imports nothing of slant.

/// The 14 frames of SemEval-2023 Task 3 subtask 2, in the order the head outputs them.
pub const FRAMES: [&str; 14] = [
    "Capacity_and_resources",
    "Crime_and_punishment",
    "Cultural_identity",
    "Economic",
    "External_regulation_and_reputation",
    "Fairness_and_equality",
    "Health_and_safety",
    "Legality_Constitutionality_and_jurisprudence",
    "Morality",
    "Policy_prescription_and_evaluation",
    "Political",
    "Public_opinion",
    "Quality_of_life",
    "Security_and_defense",
];
