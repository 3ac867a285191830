# language: fr
@socle:DMP
Fonctionnalité: Dossier médical partagé (DMP) depuis le DPI
  Le DPI teste le DMP du patient avant de l'alimenter, envoie chaque document produit
  (niveau N1 avec son PDF) sous un VIHF signé, respecte l'opposition du patient, et gère
  masquage, remplacement et suppression. Le bouchon DMP juge chaque échange reçu.

  Contexte:
    Soit le DMP est disponible
    Et le professionnel "médecin hospitalier" est inscrit à Pro Santé Connect

  @exigence:DMP/CONF.01
  Scénario: Le DMP est testé (TD0.2) avant d'être alimenté
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie au DMP un document de niveau N3 pour ce patient
    Alors le logiciel a testé le DMP du patient (TD0.2) avant chaque alimentation

  @exigence:DMP/PROV.01
  Scénario: Chaque appel au DMP porte un VIHF valide
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie au DMP un document de niveau N3 pour ce patient
    Alors chaque appel au DMP porte un VIHF valide, signé par l'organisation, pour le patient concerné

  @exigence:DMP/AIRS.03
  Scénario: Sans connexion Pro Santé Connect, le VIHF est en authentification indirecte renforcée
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie au DMP un document de niveau N3 pour ce patient
    Alors chaque appel au DMP porte un VIHF en authentification indirecte renforcée (AIR)

  @exigence:DMP/AIRS.06
  Scénario: Le VIHF nomme le professionnel auteur par son RPPS
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie au DMP un document de niveau N3 pour ce patient
    Alors chaque VIHF désigne nominativement le professionnel auteur, par son identifiant RPPS

  @exigence:DMP/PROV.02
  Scénario: Les métadonnées XDS de la soumission sont acceptées par le DMP
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie au DMP un document de niveau N3 pour ce patient
    Alors le DMP a accepté les métadonnées XDS de la soumission

  @exigence:DMP/PROV.03
  Scénario: Le document envoyé est conforme au CI-SIS
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie au DMP un document de niveau N3 pour ce patient
    Alors le document envoyé est conforme au CI-SIS (structuration minimale)

  @exigence:DMP/CONF.01
  Scénario: Une identité différente dans le DMP est signalée
    Soit le patient "MARTIN" "JEANNE CLAIRE" de sexe F né le 1990-05-17 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel teste le DMP de ce patient
    Alors le logiciel signale que l'identité du DMP diffère de l'identité locale

  @exigence:DMP/PROV.09
  Scénario: Une identité récupérée mais non qualifiée n'alimente pas le DMP
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 est enregistré dans le logiciel
    Et le logiciel a interrogé l'INSi par les traits pour ce patient
    Quand un document est validé pour ce patient
    Alors le logiciel n'a pas envoyé l'INS de ce patient au DMP

  @exigence:DMP/CONF.05
  Scénario: L'alimentation du DMP ne demande pas d'autorisation d'accès
    Soit le patient "DUPONT" "LOUIS" de sexe M né le 1985-02-10 à 75056 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie au DMP un document de niveau N1 pour ce patient
    Alors le logiciel n'a demandé aucune autorisation (TD0.3) pour alimenter le DMP

  @exigence:DMP/CONF.06
  Scénario: L'opposition du patient empêche la consultation de son DMP
    Soit le patient "NESSI" "MICHEL" de sexe M né le 1990-01-15 à 75056 a une identité qualifiée dans le logiciel
    Quand le logiciel consulte le DMP de ce patient
    Alors le logiciel n'a pas consulté le DMP de ce patient

  @exigence:DMP/CONF.09
  Scénario: L'opposition du patient empêche l'alimentation de son DMP
    Soit le patient "NESSI" "MICHEL" de sexe M né le 1990-01-15 à 75056 a une identité qualifiée dans le logiciel
    Quand un document est validé pour ce patient
    Alors le logiciel n'a pas alimenté le DMP de ce patient

  @exigence:DMP/PROV.06
  Scénario: La consultation liste puis ouvre les documents du DMP
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Et le logiciel a envoyé au DMP un document de niveau N1 pour ce patient
    Quand le logiciel consulte le DMP de ce patient
    Alors le logiciel a listé puis ouvert les documents du DMP

  @exigence:DMP/ALI/PROG.01
  Scénario: Chaque document validé part de lui-même au DMP
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand un document est validé pour ce patient
    Alors le logiciel a envoyé le document au DMP de lui-même

  @exigence:DOC.01
  Scénario: Un document validé part au DMP en niveau N1 avec son PDF
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand un document est validé pour ce patient
    Alors le document est parti au DMP en niveau N1, avec son PDF embarqué

  @exigence:DOC/va1.21
  Scénario: Un document masqué aux professionnels porte le code MASQUE_PS
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie au DMP un document masqué aux professionnels pour ce patient
    Alors le DMP enregistre le document avec le code de confidentialité "MASQUE_PS"

  @exigence:DOC/va1.21
  Scénario: Masquer un document déjà envoyé met à jour sa confidentialité dans le DMP
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Et le logiciel a envoyé au DMP un document de niveau N1 pour ce patient
    Quand le logiciel masque ce document dans le DMP
    Alors le DMP enregistre le document avec le code de confidentialité "MASQUE_PS"

  @exigence:DMP/PROV.04
  Scénario: Un document corrigé remplace l'ancien dans le DMP
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Et le logiciel a envoyé au DMP un document de niveau N1 pour ce patient
    Quand le logiciel remplace ce document dans le DMP
    Alors le nouveau document remplace l'ancien dans le DMP

  @exigence:DMP/CONF.03
  Scénario: Un document peut être supprimé du DMP
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Et le logiciel a envoyé au DMP un document de niveau N1 pour ce patient
    Quand le logiciel supprime ce document dans le DMP
    Alors le document est supprimé du DMP

  @exigence:DMP/PROV.05
  Plan du scénario: Le DMP répond par <panne> : l'erreur est affichée et le document gardé pour un nouvel envoi
    Soit le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Et le DMP répond au prochain envoi par <panne>
    Quand un document est validé pour ce patient
    Alors le logiciel signale l'erreur du DMP et garde le document pour le renvoyer
    Quand le logiciel relance l'envoi des documents en attente
    Alors le DMP a reçu le document après la relance

    Exemples:
      | panne                  |
      | une erreur SOAP        |
      | une erreur du registre |
      | un dépassement de délai |

  @exigence:DMP/PSC.01
  Scénario: Connecté par Pro Santé Connect, le logiciel accède au DMP avec cette identité
    Soit le professionnel s'est connecté avec Pro Santé Connect par le navigateur avec sa carte CPS
    Et le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 a une identité qualifiée dans le logiciel
    Quand le logiciel envoie au DMP un document de niveau N1 pour ce patient
    Alors chaque appel au DMP porte un VIHF en mode Pro Santé Connect avec le jeton du professionnel connecté
