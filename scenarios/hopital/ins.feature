# language: fr
@socle:INS
Fonctionnalité: Identité nationale de santé dans le dossier patient informatisé (DPI)
  Le DPI récupère l'INS auprès du téléservice INSi, la contrôle, la trace,
  et ne la transmet que pour une identité qualifiée (RNIV).

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
      | ADRUN    | ZOE      | F    | 1975-12-31 | 63220 | 00   |
      | HOUILLES | PIERRE   | M    | 1970-01-01 | 63220 | 01   |
      | DE VINCI | LEONARDO | M    | 1952-04-15 | 99127 | 02   |

  @exigence:INS/va1.06
  Scénario: La vérification d'une INS est tracée avec son résultat
    Soit le patient "NESSI" "MICHEL" de sexe M né le 1990-01-15 à 75056 est enregistré dans le logiciel
    Et le logiciel a interrogé l'INSi par les traits pour ce patient
    Quand le logiciel vérifie l'INS de ce patient
    Alors le logiciel a tracé la vérification avec son résultat

  @exigence:INS/va1.58
  Scénario: L'INSi est appelé avec un certificat d'organisation INSI-AUTO ou INSI-MANU
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 est enregistré dans le logiciel
    Quand le logiciel appelle l'INSi pour ce patient, quelle que soit la réponse
    Alors chaque appel INSi a été authentifié par un certificat IGC-Santé INSI-AUTO ou INSI-MANU

  @exigence:INS/va1.02
  Scénario: Une seconde saisie du même patient retrouve le dossier existant
    Soit le patient suivant est enregistré dans le logiciel
      | nom_naissance | prenoms      | sexe | date_naissance | lieu_naissance |
      | MARTIN        | JEANNE CLAIRE | F   | 1990-05-17     | 63220          |
    Quand le même patient est saisi une seconde fois
    Alors le logiciel retrouve le patient existant au lieu d'en créer un nouveau

  @exigence:INS/PROV.03
  Scénario: Une INS dont la clé est invalide est refusée
    Soit le patient "HERMANN" "GATIEN" de sexe M né le 1981-03-24 à 63220 est enregistré dans le logiciel
    Quand le logiciel interroge l'INSi par les traits pour ce patient
    Alors le logiciel n'a pas enregistré l'INS renvoyé
    Et l'identité a le statut "provisoire"

  @exigence:INS/PROV.03
  Plan du scénario: Une INS née en Corse (<departement>) est acceptée avec sa clé
    Soit le patient "<nom>" "<prenoms>" de sexe M né le <naissance> à <lieu> est enregistré dans le logiciel
    Quand le logiciel interroge l'INSi par les traits pour ce patient
    Alors le logiciel a enregistré l'INS actif renvoyé par l'INSi

    Exemples:
      | departement | nom      | prenoms   | naissance  | lieu  |
      | 2A          | ADRTROIS | DOMINIQUE | 1982-05-12 | 2A004 |
      | 2B          | CORSE    | ANTHONY   | 1980-03-02 | 2B020 |

  @exigence:INS/PROV.04
  Scénario: Les traits renvoyés par l'INSi remplacent les traits saisis
    Soit le patient "Ecetinsi" "Pierre-Alain" de sexe M né le 2009-07-14 à 63220 est enregistré dans le logiciel
    Quand le logiciel interroge l'INSi par les traits pour ce patient
    Alors les traits du patient sont ceux renvoyés par l'INSi

  @exigence:INS/PROV.05
  Scénario: Après un code 01, la recherche est relancée avec les autres prénoms saisis
    Soit le patient "TCHITCHI" "KATY CATHY" de sexe F né le 1984-06-21 à 63220 est enregistré dans le logiciel
    Quand le logiciel interroge l'INSi par les traits pour ce patient
    Alors le logiciel a relancé la recherche avec le prénom "CATHY"
    Et le logiciel a enregistré l'INS actif renvoyé par l'INSi

  @exigence:INS/PROV.06
  Scénario: Seule l'INS active est conservée quand l'INSi renvoie un historique
    Soit le patient "ECETINSI" "PIERRE-ALAIN" de sexe M né le 2009-07-14 à 63220 est enregistré dans le logiciel
    Quand le logiciel interroge l'INSi par les traits pour ce patient
    Alors le logiciel a enregistré l'INS actif renvoyé par l'INSi
    Et l'OID enregistré est celui renvoyé par l'INSi

  @exigence:INS/PROV.06
  Scénario: Une INS portée par un NIA garde l'OID INS-NIA
    Soit le patient "PROVISOIRE" "MATRICULE" de sexe M né le 2009-07-01 à 63220 est enregistré dans le logiciel
    Quand le logiciel interroge l'INSi par les traits pour ce patient
    Alors le logiciel a enregistré l'INS actif renvoyé par l'INSi
    Et l'OID enregistré est celui renvoyé par l'INSi

  @exigence:INS/PROV.01
  Scénario: Une identité saisie sans INS ni justificatif est provisoire
    Soit le patient "DUPONT" "LOUIS" de sexe M né le 1985-02-10 à 75056 est enregistré dans le logiciel
    Alors l'identité a le statut "provisoire"

  @exigence:INS/PROV.01
  Scénario: Une identité dont l'INS est récupérée sans justificatif est récupérée
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 est enregistré dans le logiciel
    Quand le logiciel interroge l'INSi par les traits pour ce patient
    Alors l'identité a le statut "recuperee"

  @exigence:INS/PROV.01
  Scénario: Une identité contrôlée sur une pièce d'identité sans INS est validée
    Soit le patient "DUPONT" "LOUIS" de sexe M né le 1985-02-10 à 75056 est enregistré dans le logiciel
    Quand l'identité est contrôlée sur le justificatif "carte_identite"
    Alors l'identité a le statut "validee"

  @exigence:INS/PROV.01
  Scénario: Une identité récupérée puis contrôlée sur une pièce d'identité est qualifiée
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 est enregistré dans le logiciel
    Et le logiciel a interrogé l'INSi par les traits pour ce patient
    Quand l'identité est contrôlée sur le justificatif "passeport"
    Alors l'identité a le statut "qualifiee"

  @exigence:INS/PROV.01
  Scénario: Une carte Vitale n'est pas un justificatif d'identité
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 est enregistré dans le logiciel
    Et le logiciel a interrogé l'INSi par les traits pour ce patient
    Quand l'identité est contrôlée sur le justificatif "carte_vitale"
    Alors le justificatif est refusé comme insuffisant
    Et l'identité a le statut "recuperee"

  @exigence:INS/PROV.02
  Scénario: L'INS d'une identité récupérée n'est pas transmise
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 est enregistré dans le logiciel
    Et le logiciel a interrogé l'INSi par les traits pour ce patient
    Alors l'INS ne figure dans l'identité exportée que si l'identité est qualifiée

  @exigence:INS/PROV.02
  Scénario: L'INS d'une identité qualifiée est transmise
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 est enregistré dans le logiciel
    Et le logiciel a interrogé l'INSi par les traits pour ce patient
    Et l'identité a été contrôlée sur le justificatif "carte_identite"
    Alors l'INS ne figure dans l'identité exportée que si l'identité est qualifiée

  @exigence:INS/PROV.07
  Plan du scénario: Une indisponibilité de l'INSi (<panne>) n'est pas confondue avec une absence d'identité
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 est enregistré dans le logiciel
    Et l'INSi <panne> au prochain appel
    Quand le logiciel tente d'interroger l'INSi pour ce patient
    Alors le logiciel signale l'indisponibilité de l'INSi sans conclure à l'absence d'identité
    Et l'identité a le statut "provisoire"

    Exemples:
      | panne                          |
      | répond par une erreur SOAP     |
      | ne répond pas dans les délais  |
      | répond par une erreur HTTP 503 |
