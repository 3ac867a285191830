# language: fr
@socle:INS
Fonctionnalité: Identité nationale de santé dans le logiciel de gestion de cabinet (LGC)
  Au cabinet, le médecin récupère l'INS de ses patients (par la carte Vitale ou par
  les traits), la contrôle, la trace, et ne la transmet que pour une identité qualifiée.

  Contexte:
    Soit le téléservice INSi est disponible

  @exigence:INS/va1.38
  Plan du scénario: La récupération de l'INS par les traits est tracée avec son code retour <code>
    Soit le patient "<nom>" "<prenoms>" de sexe <sexe> né le <naissance> à <lieu> est enregistré dans le logiciel
    Quand le logiciel interroge l'INSi par les traits pour ce patient
    Alors l'INSi a répondu avec le code retour "<code>"
    Et le logiciel a tracé chaque appel INSi avec son code retour

    Exemples:
      | nom      | prenoms  | sexe | naissance  | lieu  | code |
      | NESSI    | MICHEL   | M    | 1990-01-15 | 75056 | 00   |
      | HOUILLES | MARIE    | F    | 1968-09-30 | 63220 | 01   |
      | DE VINCI | LEONARDO | M    | 1952-04-15 | 99127 | 02   |

  @exigence:INS/va1.38
  Scénario: La récupération de l'INS par la carte Vitale est tracée avec son code retour
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 est enregistré dans le logiciel
    Quand le logiciel interroge l'INSi avec la carte Vitale "275126322074974" pour ce patient
    Alors l'INSi a répondu avec le code retour "00"
    Et le logiciel a tracé chaque appel INSi avec son code retour

  @exigence:INS/va1.06
  Scénario: La vérification d'une INS au cabinet est tracée avec son résultat
    Soit le patient "DUPONT" "LOUIS" de sexe M né le 1985-02-10 à 75056 est enregistré dans le logiciel
    Et le logiciel a interrogé l'INSi par les traits pour ce patient
    Quand le logiciel vérifie l'INS de ce patient
    Alors le logiciel a tracé la vérification avec son résultat

  @exigence:INS/va1.58
  Scénario: Le LGC appelle l'INSi avec un certificat d'organisation INSI-AUTO ou INSI-MANU
    Soit le patient "NESSI" "MICHEL" de sexe M né le 1990-01-15 à 75056 est enregistré dans le logiciel
    Quand le logiciel appelle l'INSi pour ce patient, quelle que soit la réponse
    Alors chaque appel INSi a été authentifié par un certificat IGC-Santé INSI-AUTO ou INSI-MANU

  @exigence:INS/va1.02
  Scénario: Un patient déjà suivi au cabinet n'est pas créé une seconde fois
    Soit le patient suivant est enregistré dans le logiciel
      | nom_naissance | prenoms | sexe | date_naissance | lieu_naissance |
      | DUPONT        | LOUIS   | M    | 1985-02-10     | 75056          |
    Quand le même patient est saisi une seconde fois
    Alors le logiciel retrouve le patient existant au lieu d'en créer un nouveau

  @exigence:INS/PROV.03
  Plan du scénario: La clé du matricule renvoyé est contrôlée (<cas>)
    Soit le patient "<nom>" "<prenoms>" de sexe M né le <naissance> à <lieu> est enregistré dans le logiciel
    Quand le logiciel interroge l'INSi par les traits pour ce patient
    Alors le logiciel <resultat>

    Exemples:
      | cas            | nom      | prenoms   | naissance  | lieu  | resultat                                     |
      | clé invalide   | HERMANN  | GATIEN    | 1981-03-24 | 63220 | n'a pas enregistré l'INS renvoyé             |
      | Bastia (2B)    | ADRTROIS | TOUSSAINT | 1979-11-01 | 2B033 | a enregistré l'INS actif renvoyé par l'INSi  |
      | Haute-Corse 2B | CORSE    | ANTHONY   | 1980-03-02 | 2B020 | a enregistré l'INS actif renvoyé par l'INSi  |

  @exigence:INS/PROV.04
  Scénario: Les traits de l'INSi remplacent ceux saisis au secrétariat
    Soit le patient "adrun" "Zoé" de sexe F né le 1975-12-31 à 63220 est enregistré dans le logiciel
    Quand le logiciel interroge l'INSi par les traits pour ce patient
    Alors les traits du patient sont ceux renvoyés par l'INSi

  @exigence:INS/PROV.05
  Scénario: Un prénom d'usage saisi en premier n'empêche pas de retrouver l'INS
    Soit le patient "TCHITCHI" "LOULOU ALEXANDRA" de sexe F né le 1984-06-21 à 63220 est enregistré dans le logiciel
    Quand le logiciel interroge l'INSi par les traits pour ce patient
    Alors le logiciel a relancé la recherche avec le prénom "ALEXANDRA"
    Et le logiciel a enregistré l'INS actif renvoyé par l'INSi

  @exigence:INS/PROV.06
  Plan du scénario: L'INS et l'OID conservés sont ceux de l'INS active (<cas>)
    Soit le patient "<nom>" "<prenoms>" de sexe M né le <naissance> à 63220 est enregistré dans le logiciel
    Quand le logiciel interroge l'INSi par les traits pour ce patient
    Alors le logiciel a enregistré l'INS actif renvoyé par l'INSi
    Et l'OID enregistré est celui renvoyé par l'INSi

    Exemples:
      | cas                 | nom        | prenoms      | naissance  |
      | historique d'INS    | ECETINSI   | PIERRE-ALAIN | 2009-07-14 |
      | matricule NIA       | PROVISOIRE | MATRICULE    | 2009-07-01 |

  @exigence:INS/PROV.01
  Plan du scénario: Le statut de l'identité suit le RNIV (<attendu>)
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 est enregistré dans le logiciel
    Et l'INS du patient <recherche> été recherchée auprès de l'INSi
    Et le justificatif d'identité présenté est "<justificatif>"
    Alors l'identité a le statut "<attendu>"

    Exemples:
      | recherche | justificatif | attendu    |
      | n'a pas   | aucun        | provisoire |
      | a         | aucun        | recuperee  |
      | n'a pas   | titre_sejour | validee    |
      | a         | passeport    | qualifiee  |
      | a         | carte_vitale | recuperee  |

  @exigence:INS/PROV.02
  Plan du scénario: L'INS n'est transmise que pour une identité qualifiée (<justificatif>)
    Soit le patient "NESSI" "MICHEL" de sexe M né le 1990-01-15 à 75056 est enregistré dans le logiciel
    Et le logiciel a interrogé l'INSi par les traits pour ce patient
    Quand l'identité est contrôlée sur le justificatif "<justificatif>"
    Alors l'INS ne figure dans l'identité exportée que si l'identité est qualifiée

    Exemples:
      | justificatif   |
      | carte_vitale   |
      | carte_identite |

  @exigence:INS/PROV.07
  Plan du scénario: Au cabinet, une panne de l'INSi (<panne>) n'est pas une absence d'identité
    Soit le patient "NESSI" "MICHEL" de sexe M né le 1990-01-15 à 75056 est enregistré dans le logiciel
    Et l'INSi <panne> au prochain appel
    Quand le logiciel tente d'interroger l'INSi pour ce patient
    Alors le logiciel signale l'indisponibilité de l'INSi sans conclure à l'absence d'identité
    Et l'identité a le statut "provisoire"

    Exemples:
      | panne                          |
      | répond par une erreur SOAP     |
      | ne répond pas dans les délais  |
